// Hooks of the "socket" group that learn what the program does with its descriptors:
// closing and duplicating them (close_waiting ends the waits parked on a number being
// reused), O_NONBLOCK through fcntl/ioctl, and SO_RCVTIMEO/SO_SNDTIMEO.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>

#include "internal/io.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

using namespace ringlet::patch::detail;
using ringlet::patch::Socket;

// --- closing and duplicating -------------------------------------------------------------

// Fibers parked on fd: end their waits (EBADF) before the number is reused; nobody parked:
// the engine still forgets what it keeps about the number (fd_replaced).
static void wake_waiters(int fd) noexcept {
  FdState* st = fd_state(fd);
  if (!st || st->waiters.load(std::memory_order_relaxed) == 0) ringlet::detail::fd_replaced(fd);
  else ringlet::detail::close_waiting(fd);
}

namespace ringlet::patch::detail {
// For a close the close hook does not see (fclose: glibc closes inside).
void fd_closing(int fd) noexcept {
  if (fd < 0) return;
  wake_waiters(fd);
  fd_forget(fd);
}
}  // namespace ringlet::patch::detail

RINGLET_HOOK int close(int fd) {
  if (Here h = on_fiber(Socket)) count_on_fiber(Call::close);
  else count_passed(Call::close);
  wake_waiters(fd);
  fd_forget(fd);
  return RINGLET_REAL(close)(fd);
}

// Every number of the range, for the engines (one count, whatever the range). No waiter is
// woken: a fiber parked on one of them waits on, as a thread blocked in read does natively.
static void range_closing(unsigned first, unsigned last) noexcept {
  ringlet::detail::fds_replaced(first, last);
}

RINGLET_HOOK int close_range(unsigned first, unsigned last, int flags) {
  count_passed(Call::close);
  if (!(flags & CLOSE_RANGE_CLOEXEC)) range_closing(first, last);
  return RINGLET_REAL(close_range)(first, last, flags);
}

RINGLET_HOOK void closefrom(int lowfd) {
  count_passed(Call::close);
  if (lowfd >= 0) range_closing(static_cast<unsigned>(lowfd), ~0u);
  RINGLET_REAL(closefrom)(lowfd);
}

RINGLET_HOOK int dup(int fd) {
  int r = RINGLET_REAL(dup)(fd);
  if (r >= 0) fd_copy(fd, r);
  count_passed(Call::dup);
  return r;
}

RINGLET_HOOK int dup2(int fd, int to) {
  if (fd != to) wake_waiters(to);
  int r = RINGLET_REAL(dup2)(fd, to);
  if (r >= 0 && fd != to) fd_copy(fd, to);
  count_passed(Call::dup2);
  return r;
}

RINGLET_HOOK int dup3(int fd, int to, int flags) {
  if (fd != to) wake_waiters(to);
  int r = RINGLET_REAL(dup3)(fd, to, flags);
  if (r >= 0) fd_copy(fd, to);
  count_passed(Call::dup3);
  return r;
}

// --- flags and options -------------------------------------------------------------------

static void note_nonblock(int fd, bool on) noexcept {
  FdState* st = fd_state(fd);
  const std::uint32_t b = st ? st->bits.load(std::memory_order_relaxed) : 0;
  // A number that is not private may be a duplicate the hooks never saw made (a raw dup,
  // an inherited one) of a private one, whose flag changed with it: no entry stays private.
  if (!(b & kPrivate) || st->born.load(std::memory_order_relaxed) != fd_share_epoch()) fd_share_epoch_advance();
  if (!st || !(b & kKnown)) return;
  if (on) st->bits.fetch_or(kNonblock, std::memory_order_relaxed);
  else st->bits.fetch_and(~static_cast<std::uint32_t>(kNonblock), std::memory_order_relaxed);
}

namespace ringlet::patch::detail {
int fcntl_lock_wait(int fd, int cmd, void* arg) noexcept;  // locks.cpp
}

template <class Real>
static int fcntl_common(Real real, int fd, int cmd, void* arg) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) &&
      (cmd == F_SETLKW || cmd == F_OFD_SETLKW))
    return RINGLET_CANCEL_POINT(fcntl_lock_wait(fd, cmd, arg));  // may park (locks.cpp)
  // F_GETFL: without the O_NONBLOCK a hook may have set for one call (program_flags).
  int r = cmd == F_GETFL ? program_flags(fd, fd_state(fd)) : real(fd, cmd, arg);
  if (r >= 0) {
    if (cmd == F_SETFL) note_nonblock(fd, (reinterpret_cast<long>(arg) & O_NONBLOCK) != 0);
    else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) fd_copy(fd, r);
  }
  count_passed(Call::fcntl);
  return r;
}

RINGLET_HOOK int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(RINGLET_REAL(fcntl), fd, cmd, arg);
}

RINGLET_HOOK int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_common(RINGLET_REAL(fcntl64), fd, cmd, arg);
}

RINGLET_HOOK int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int r = RINGLET_REAL(ioctl)(fd, request, arg);
  if (r == 0 && request == FIONBIO && arg) note_nonblock(fd, *static_cast<int*>(arg) != 0);
  count_passed(Call::ioctl);
  return r;
}

RINGLET_HOOK int setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  int r = RINGLET_REAL(setsockopt)(fd, level, name, val, len);
  if (r == 0 && level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO) &&
      len >= sizeof(timeval)) {
    if (FdState* st = fd_state(fd)) {
      const auto* tv = static_cast<const timeval*>(val);
      const std::int64_t ns = static_cast<std::int64_t>(tv->tv_sec) * 1'000'000'000 + tv->tv_usec * 1000;
      (name == SO_RCVTIMEO ? st->rcvtimeo_ns : st->sndtimeo_ns).store(ns, std::memory_order_relaxed);
    }
  }
  // Kernel TLS, or a low-water mark: a short read no longer means an empty queue (state.hpp).
  if (r == 0 && ((level == IPPROTO_TCP && name == TCP_ULP) ||
                 (level == SOL_SOCKET && name == SO_RCVLOWAT &&
                  !(val && len >= sizeof(int) && *static_cast<const int*>(val) <= 1))))
    g_reads_shaped.store(true, std::memory_order_relaxed);
  count_passed(Call::setsockopt);
  return r;
}
