// ringlet::io, and the one I/O path: detail::perform (the runtime's half; each engine's half
// is its Reactor::submit_and_park), its C++ edge and connect. close_waiting is in close.cpp.
#include "ringlet/io.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "internal/hot.hpp"
#include "internal/io.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet {

namespace detail {

RINGLET_HOT IoRequest buffer_request(IoRequest::Op op, int fd, const void* buf, std::size_t n, int flags,
                         const char* what) noexcept {
  IoRequest q;
  q.op = op;
  q.fd = fd;
  q.cbuf = buf;
  q.len = static_cast<std::uint32_t>(n > 0x7ffff000 ? 0x7ffff000 : n);  // Linux caps I/O so
  q.flags = flags;
  q.what = what;
  return q;
}

IoRequest poll_request(int fd, short events, const char* what) noexcept {
  IoRequest p;
  p.op = IoRequest::Op::Poll;
  p.fd = fd;
  p.len = static_cast<std::uint16_t>(events);
  p.what = what;
  return p;
}

namespace {
// A plain thread: the ordinary blocking call, bounded by the earlier of d and the thread's
// scoped Timeout.
IoOutcome perform_on_thread(const IoRequest& req, Deadline d) noexcept {
  const DeadlineSlot& slot = thread_deadline_slot();
  const Deadline eff = earliest(d, slot.deadline);
  const long r = perform_blocking(req, eff);
  if (r == -ETIMEDOUT && !eff.is_never() && eff.passed())
    return {r, slot.deadline < d ? Woke::Scoped : Woke::Deadline};
  return {r, Woke::Notified};
}
}  // namespace

RINGLET_HOT IoOutcome perform(const IoRequest& req, Deadline d) noexcept {
  Scheduler* s = Scheduler::current();
  Fiber* f = s ? s->running() : nullptr;
  if (!f) return perform_on_thread(req, d);
  // The switch point: a kill or an enclosing Timeout that is already due starts nothing.
  if (st(f).kill_pending) {
    st(f).kill_woke = true;
    return {-ECANCELED, Woke::Killed};
  }
  if (!st(f).deadline.deadline.is_never() && st(f).deadline.deadline.passed())
    return {-ETIMEDOUT, Woke::Scoped};
  s->counters().io_submitted.add();
  const IoOutcome r = s->reactor().submit_and_park(f, req, d);
  if (r.why == Woke::Notified || r.res >= 0) s->counters().io_completed.add();
  if (r.why == Woke::Notified) {
    // The engine retried whatever the kernel ended by itself: a cancellation now is
    // close_waiting()'s (cancel_fd), and the descriptor is gone.
    return r.res == -ECANCELED ? IoOutcome{-EBADF, Woke::Notified} : r;
  }
  if (r.res >= 0) {
    // It completed although a kill, timeout or signal raced it: keep the result, so no
    // data is lost; a kill stays pending and is raised at the next switch point.
    if (r.why == Woke::Killed) {
      st(f).kill_pending = true;
      st(f).kill_woke = false;  // the kill ended nothing (take_kill_wake)
    }
    return {r.res, Woke::Notified};
  }
  return r;
}

RINGLET_HOT long perform_or_throw(const IoRequest& req, Deadline d) {
  const IoOutcome r = perform(req, d);
  if (r.why == Woke::Notified) [[likely]]
    return r.res;
  return settle(r.why) ? -ETIMEDOUT : r.res;  // throws unless the call's own deadline passed
}

IoOutcome connect_start(int fd, const sockaddr* addr, socklen_t len, Deadline d) noexcept {
  for (;;) {
    if (sys::connect(fd, addr, len) == 0) return {0, Woke::Notified};
    if (errno == EINPROGRESS || errno == EINTR) return {-EINPROGRESS, Woke::Notified};
    if (errno != EAGAIN) return {-errno, Woke::Notified};
    // A Unix socket whose listener's backlog is full answers EAGAIN (unix(7)): nothing to
    // wait on but time. Nap 2 ms (or until d) and ask again.
    if (d.passed()) return {-ETIMEDOUT, Woke::Deadline};
    Waiter w;
    w.arm();
    WaitSpec spec;
    spec.what = "connect (listener's backlog full)";
    spec.kind = WaitKind::Sleep;  // a nap, not a wait on the kernel
    spec.deadline = earliest(d, Deadline::after(std::chrono::milliseconds(2)));
    const Woke r = wait(w, spec);  // nobody wakes it: it ends at the nap's deadline
    if (r != Woke::Deadline) return {-ECANCELED, r};
  }
}

bool reads_shaped(int fd) noexcept {
  char ulp[16] = {};
  socklen_t ulp_len = sizeof ulp;
  int lowat = 1;
  socklen_t len = sizeof lowat;
  return (::getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &ulp_len) == 0 && ulp_len > 0 && ulp[0] != '\0') ||
         (::getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &len) == 0 && lowat > 1);
}

long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d) {
  // The same on every engine: a non-blocking connect(2), then a wait for writability
  // through perform, then the outcome from SO_ERROR.
  const IoOutcome c = connect_start(fd, addr, len, d);
  if (c.why != Woke::Notified) return settle(c.why) ? -ETIMEDOUT : c.res;
  if (c.res != -EINPROGRESS) return c.res;
  long r = perform_or_throw(poll_request(fd, POLLOUT, "connect"), d);
  if (r < 0) return r;
  int err = 0;
  socklen_t n = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n) != 0) return -errno;
  return -err;
}

}  // namespace detail

namespace io {

namespace {

std::size_t finish(long r, std::error_code& ec) {
  if (r < 0) {
    ec.assign(static_cast<int>(-r), std::system_category());
    return 0;
  }
  ec.clear();
  return static_cast<std::size_t>(r);
}

std::size_t or_throw(long r, const char* what) {
  if (r < 0) throw std::system_error(static_cast<int>(-r), std::system_category(), what);
  return static_cast<std::size_t>(r);
}

}  // namespace

std::size_t read(int fd, void* buf, std::size_t n, Deadline d, std::error_code& ec) {
  return finish(detail::perform_or_throw(detail::buffer_request(detail::IoRequest::Op::Read, fd, buf, n, 0, "read"), d), ec);
}
std::size_t read(int fd, void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform_or_throw(detail::buffer_request(detail::IoRequest::Op::Read, fd, buf, n, 0, "read"), d),
                  "ringlet::io::read");
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d, std::error_code& ec) {
  return finish(detail::perform_or_throw(detail::buffer_request(detail::IoRequest::Op::Write, fd, buf, n, 0, "write"), d), ec);
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform_or_throw(detail::buffer_request(detail::IoRequest::Op::Write, fd, buf, n, 0, "write"), d),
                  "ringlet::io::write");
}

void write_all(int fd, const void* buf, std::size_t n, Deadline d) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    std::size_t k = write(fd, p, n, d);
    p += k;
    n -= k;
  }
}

short poll(int fd, short events, Deadline d) {
  long r = detail::perform_or_throw(detail::poll_request(fd, events, "poll"), d);
  if (r == -ETIMEDOUT) return 0;
  return static_cast<short>(or_throw(r, "ringlet::io::poll"));
}

}  // namespace io
}  // namespace ringlet
