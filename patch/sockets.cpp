// Hooks of the "socket" group that make descriptors: socket, accept, accept4 and connect
// (reading and writing them is io.cpp). A socket made here is classified at once.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "internal/io.hpp"
#include "internal/sys.hpp"
#include "io_wait.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

using namespace ringlet::patch::detail;
using ringlet::patch::Socket;
using ringlet::Deadline;

// --- creating descriptors ----------------------------------------------------------------

RINGLET_HOOK int socket(int domain, int type, int protocol) {
  const std::uint32_t epoch = fd_share_epoch();  // before: a fork racing the call moves it
  int fd = RINGLET_REAL(socket)(domain, type, protocol);
  if (fd >= 0) {
    const int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    fd_set_created(fd, kManaged | kSocket | (base == SOCK_STREAM ? kStream : 0u) |
                           ((type & SOCK_NONBLOCK) ? kNonblock : 0u), epoch);
  }
  count_passed(Call::socket);
  return fd;
}

static int accept_common(int fd, sockaddr* addr, socklen_t* len, int flags, Call c) {
  const std::uint32_t epoch = fd_share_epoch();  // before: a fork racing the call moves it
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  int r;
  if (!st) {
    count_passed(c);
    r = RINGLET_REAL(accept4)(fd, addr, len, flags);
  } else {
    count_on_fiber(c);
    const Deadline d = timeout_of(st->rcvtimeo_ns);
    const SignalCounts at = thread_signals();
    for (;;) {
      // Ready first (a blocking listener cannot be tried without blocking), then accept.
      pollfd p{fd, POLLIN, 0};
      if (ringlet::detail::sys::poll(&p, 1, 0) > 0) {
        r = RINGLET_REAL(accept4)(fd, addr, len, flags);
        break;
      }
      if (kernel_nonblocking(fd, st)) {
        r = RINGLET_REAL(accept4)(fd, addr, len, flags);
        break;
      }
      if (wait_ready(fd, POLLIN, d, at, c, "accept (patched)") < 0) return -1;
    }
  }
  if (r >= 0) {
    fd_set_created(r, kManaged | kSocket | kStream | ((flags & SOCK_NONBLOCK) ? kNonblock : 0u), epoch);
    // A listener with a full backlog never makes accept wait: let the fibers the program
    // starts for each client run between accepts, as its threads would run beside it.
    if (st) {
      const int saved = errno;
      h.s->yield_nothrow();
      errno = saved;
    }
  }
  return r;
}

static int cancel_point_accept(int fd, sockaddr* addr, socklen_t* len) noexcept {
  return accept_common(fd, addr, len, 0, Call::accept);
}

RINGLET_HOOK int accept(int fd, sockaddr* addr, socklen_t* len) {
  return RINGLET_CANCEL_POINT(cancel_point_accept(fd, addr, len));
}
static int cancel_point_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  return accept_common(fd, addr, len, flags, Call::accept4);
}

RINGLET_HOOK int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point_accept4(fd, addr, len, flags));
}

static int cancel_point_connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  int fl = -1;
  if (st) fl = program_flags(fd, st);
  if (!st || fl < 0 || (fl & O_NONBLOCK)) {
    if (st && fl >= 0) st->bits.fetch_or(kNonblock, std::memory_order_relaxed);
    count_passed(Call::connect);
    return RINGLET_REAL(connect)(fd, addr, len);
  }
  count_on_fiber(Call::connect);
  // Non-blocking for the connect itself only (a window other carriers' reads of the flag
  // see through, program_flags), then a wait for writability.
  nonblock_window_open(st);
  ringlet::detail::sys::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  IoOutcome c;
  {
    ringlet::detail::InterruptScope scope;  // a signal ends its nap (backlog full)
    c = ringlet::detail::connect_start(fd, addr, len, Deadline::never());
  }
  ringlet::detail::sys::fcntl(fd, F_SETFL, fl);
  nonblock_window_close(st);
  if (c.why != Woke::Notified || c.res != -EINPROGRESS) {
    if (c.why == Woke::Notified && c.res == 0) return 0;
    errno = c.why == Woke::Notified ? static_cast<int>(-c.res) : woke_errno(c.why);
    return -1;
  }
  const Deadline d = timeout_of(st->sndtimeo_ns);
  const SignalCounts at = thread_signals();
  // Writable means the handshake ended (SO_ERROR says how); a timeout leaves the connection
  // in progress (EINPROGRESS), as SO_SNDTIMEO does.
  if (wait_ready(fd, POLLOUT, d, at, Call::connect, "connect (patched)", EINPROGRESS) < 0) return -1;
  int err = 0;
  socklen_t n = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0) return -1;
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

RINGLET_HOOK int connect(int fd, const sockaddr* addr, socklen_t len) {
  return RINGLET_CANCEL_POINT(cancel_point_connect(fd, addr, len));
}
