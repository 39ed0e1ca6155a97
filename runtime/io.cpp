#include "ringlet/io.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "detail/io.hpp"
#include "detail/scheduler.hpp"
#include "detail/sys.hpp"

namespace ringlet {

namespace detail {

IoRequest buffer_request(IoRequest::Op op, int fd, const void* buf, std::size_t n, int flags,
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
long perform_once(const IoRequest& req, Deadline d) {
  Scheduler* s = Scheduler::current();
  Fiber* f = s ? s->running() : nullptr;
  if (!f) {
    DeadlineSlot& slot = thread_deadline_slot();
    long r = perform_blocking(req, earliest(d, slot.deadline));
    if (r == -ETIMEDOUT && slot.deadline < d) throw Timeout::Expired(slot.owner, slot.deadline);
    return r;
  }
  s->check_interrupts(f);
  IoResult r = s->reactor().perform(f, req, earliest(d, f->deadline.deadline));
  if (r.reason == WakeReason::Notified) return r.res;
  if (r.res >= 0) {
    // It completed although a kill or timeout raced it: keep the result, raise at the next
    // switch point instead, so no data is lost.
    if (r.reason == WakeReason::Killed) f->kill_pending = true;
    return r.res;
  }
  s->settle(f, r.reason, d);  // throws unless the explicit deadline passed
  return -ETIMEDOUT;
}
}  // namespace

long perform(const IoRequest& req, Deadline d) {
  for (;;) {
    long r = perform_once(req, d);
    if (r != -EAGAIN || req.op == IoRequest::Op::Poll) return r;
    // A non-blocking fd the engine handed back unfinished (io_uring before it learnt to
    // retry O_NONBLOCK files itself): wait for readiness, then try again.
    long pr = perform_once(poll_request(req.fd, poll_events(req), req.what), d);
    if (pr < 0) return pr;
  }
}

long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d) {
  // The same on every engine: a non-blocking connect(2), then a wait for writability
  // through the reactor, then the outcome from SO_ERROR.
  for (;;) {
    if (sys::connect(fd, addr, len) == 0) return 0;
    if (errno == EINPROGRESS || errno == EINTR) break;
    if (errno != EAGAIN) return -errno;
    // A Unix socket whose listener's backlog is full: nothing to wait on but time.
    if (d.passed()) return -ETIMEDOUT;
    sleep_until(earliest(d, Deadline::after(std::chrono::milliseconds(2))));
  }
  long r = perform(poll_request(fd, POLLOUT, "connect"), d);
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
  return finish(detail::perform(detail::buffer_request(detail::IoRequest::Op::Read, fd, buf, n, 0, "read"), d), ec);
}
std::size_t read(int fd, void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform(detail::buffer_request(detail::IoRequest::Op::Read, fd, buf, n, 0, "read"), d),
                  "ringlet::io::read");
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d, std::error_code& ec) {
  return finish(detail::perform(detail::buffer_request(detail::IoRequest::Op::Write, fd, buf, n, 0, "write"), d), ec);
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform(detail::buffer_request(detail::IoRequest::Op::Write, fd, buf, n, 0, "write"), d),
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
  long r = detail::perform(detail::poll_request(fd, events, "poll"), d);
  if (r == -ETIMEDOUT) return 0;
  return static_cast<short>(or_throw(r, "ringlet::io::poll"));
}

}  // namespace io
}  // namespace ringlet
