#include "internal/blocked_call.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "internal/sys.hpp"

namespace ringlet::detail {

namespace {

// Raw system calls (with sys::read and sys::close): the patch interposes open, read and
// close, and this runs on the monitor's own thread, which must not go through them.
int open_ro(const char* path) noexcept {
  return static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
}

// A socket call on a socket with a receive or send timeout ends with EINTR when a handler
// runs (signal(7)); one without waits on after it (SA_RESTART).
bool socket_has_timeout(long fd) noexcept {
  for (int opt : {SO_RCVTIMEO, SO_SNDTIMEO}) {
    timeval tv{};
    socklen_t len = sizeof tv;
    if (::syscall(SYS_getsockopt, fd, SOL_SOCKET, opt, &tv, &len) != 0) return false;  // not a socket
    if (tv.tv_sec != 0 || tv.tv_usec != 0) return true;
  }
  return false;
}

// Whether a signal handler leaves call `nr` (arguments `a`) exactly as it was: restarted
// under SA_RESTART, nothing transferred (signal(7)). Only these are interrupted. Every other
// call may end early with EINTR (nanosleep, poll, sigtimedwait, a timed futex wait, ...), or
// return what it has transferred so far: a write to a pipe or socket, a read with
// MSG_WAITALL or SO_RCVLOWAT, a terminal read waiting for VMIN bytes.
bool restarted_whole(long nr, const unsigned long* a) noexcept {
  switch (nr) {
    case SYS_futex: {
      // A wait with a timeout is ended early (ERESTART_RESTARTBLOCK); one without is
      // restarted, as are the PI locks.
      const long cmd = static_cast<long>(a[1]) & FUTEX_CMD_MASK;
      const bool waits = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
      return !waits || a[3] == 0;
    }
    case SYS_wait4:
    case SYS_waitid:
    case SYS_flock:
    case SYS_fcntl:  // F_SETLKW, F_OFD_SETLKW: the others do not block
    case SYS_open:
    case SYS_openat:  // a FIFO's open waits for the other end
      return true;
    case SYS_accept:
    case SYS_accept4:
    case SYS_connect:
      return !socket_has_timeout(static_cast<long>(a[0]));
    default:
      return false;
  }
}

// A name for call `nr` in a report.
const char* call_name(long nr) noexcept {
  switch (nr) {
    case SYS_restart_syscall: return "restart_syscall (a sleep or timed wait the kernel restarted)";
    case SYS_nanosleep: return "nanosleep";
    case SYS_clock_nanosleep: return "clock_nanosleep";
    case SYS_poll: return "poll";
    case SYS_ppoll: return "ppoll";
    case SYS_select: return "select";
    case SYS_pselect6: return "pselect6";
    case SYS_epoll_wait: return "epoll_wait";
    case SYS_epoll_pwait: return "epoll_pwait";
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2: return "epoll_pwait2";
#endif
    case SYS_pause: return "pause";
    case SYS_rt_sigsuspend: return "sigsuspend";
    case SYS_rt_sigtimedwait: return "sigtimedwait";
    case SYS_semop: return "semop";
    case SYS_semtimedop: return "semtimedop";
    case SYS_msgrcv: return "msgrcv";
    case SYS_msgsnd: return "msgsnd";
    case SYS_mq_timedreceive: return "mq_timedreceive";
    case SYS_mq_timedsend: return "mq_timedsend";
    case SYS_io_getevents: return "io_getevents";
#ifdef SYS_io_uring_enter
    case SYS_io_uring_enter: return "io_uring_enter";
#endif
    case SYS_futex: return "futex (a timed wait)";
    case SYS_read: return "read";
    case SYS_readv: return "readv";
    case SYS_write: return "write";
    case SYS_writev: return "writev";
    case SYS_recvfrom: return "recvfrom";
    case SYS_recvmsg: return "recvmsg";
    case SYS_recvmmsg: return "recvmmsg";
    case SYS_sendto: return "sendto";
    case SYS_sendmsg: return "sendmsg";
    case SYS_sendmmsg: return "sendmmsg";
    case SYS_accept: return "accept (on a socket with a timeout)";
    case SYS_accept4: return "accept4 (on a socket with a timeout)";
    case SYS_connect: return "connect (on a socket with a timeout)";
    case SYS_splice: return "splice";
    case SYS_sendfile: return "sendfile";
    case SYS_ioctl: return "ioctl";
    default: return nullptr;
  }
}

// Whether the bytes before `ret` end with a call instruction: e8 rel32, or ff /2 (an
// indirect call: through a register, memory, or rip-relative, with or without a REX prefix).
bool follows_call(std::uintptr_t ret) noexcept {
  unsigned char b[7];
  iovec local{b, sizeof b};
  iovec remote{reinterpret_cast<void*>(ret - sizeof b), sizeof b};
  if (::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof b)) return false;
  const unsigned char* end = b + sizeof b;
  if (end[-5] == 0xe8) return true;
  for (int k : {2, 3, 4, 6, 7})
    if (end[-k] == 0xff && ((end[-k + 1] >> 3) & 7) == 2) return true;
  return false;
}

}  // namespace

BlockedCall blocked_call(pid_t tid) noexcept {
  BlockedCall out;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  const int fd = open_ro(path);
  if (fd < 0) return out;
  char text[256];
  const ssize_t n = sys::read(fd, text, sizeof text - 1);
  sys::close(fd);
  if (n <= 0) return out;
  text[n] = '\0';
  // "running", "-1 SP PC" (blocked outside a call), or "NR A1 .. A6 SP PC".
  char* p = text;
  char* end = nullptr;
  const long nr = std::strtol(p, &end, 10);
  if (end == p || nr < 0) return out;
  unsigned long v[8];
  p = end;
  for (unsigned long& x : v) {
    x = std::strtoul(p, &end, 16);
    if (end == p) return out;
    p = end;
  }
  if (!restarted_whole(nr, v)) {
    out.interrupt_changes_it = true;
    if (const char* name = call_name(nr))
      std::snprintf(out.name, sizeof out.name, "%s", name);
    else
      std::snprintf(out.name, sizeof out.name, "system call %ld", nr);
  }
  out.sp = reinterpret_cast<void*>(v[6]);
  out.pc = reinterpret_cast<void*>(v[7]);
  return out;
}

int scan_return_addresses(const void* sp, void** out, int max) noexcept {
  constexpr std::size_t kWords = 1024;  // 8 KiB of its stack, copied onto the caller's
  std::uintptr_t words[kWords];
  // Page by page: a read stops at the first unmapped page (the top of a fiber's stack).
  std::size_t got = 0;
  auto at = reinterpret_cast<std::uintptr_t>(sp) & ~std::uintptr_t{7};
  while (got < kWords) {
    const std::size_t to_page = 4096 - (at & 4095);
    const std::size_t want = std::min((kWords - got) * sizeof(std::uintptr_t), to_page);
    iovec local{words + got, want};
    iovec remote{reinterpret_cast<void*>(at), want};
    if (::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) != static_cast<ssize_t>(want)) break;
    got += want / sizeof(std::uintptr_t);
    at += want;
  }
  int n = 0;
  for (std::size_t i = 0; i < got && n < max; ++i) {
    const std::uintptr_t w = words[i];
    if (w < 4096) continue;
    Dl_info info{};
    if (!dladdr(reinterpret_cast<void*>(w), &info) || !info.dli_fname) continue;
    if (!follows_call(w)) continue;
    out[n++] = reinterpret_cast<void*>(w);
  }
  return n;
}

}  // namespace ringlet::detail
