#include "ringlet/io.hpp"

#include <poll.h>

#include <cerrno>

#include "detail/io.hpp"
#include "detail/scheduler.hpp"

namespace ringlet {

namespace detail {

long perform(const IoRequest& req, Deadline d) {
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

}  // namespace detail

namespace io {

namespace {

detail::IoRequest make(detail::IoRequest::Op op, int fd, const void* buf, std::size_t n,
                       const char* what) {
  detail::IoRequest q;
  q.op = op;
  q.fd = fd;
  q.cbuf = buf;
  q.len = static_cast<std::uint32_t>(n > 0x7ffff000 ? 0x7ffff000 : n);  // Linux caps I/O so
  q.what = what;
  return q;
}

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
  return finish(detail::perform(make(detail::IoRequest::Op::Read, fd, buf, n, "read"), d), ec);
}
std::size_t read(int fd, void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform(make(detail::IoRequest::Op::Read, fd, buf, n, "read"), d),
                  "ringlet::io::read");
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d, std::error_code& ec) {
  return finish(detail::perform(make(detail::IoRequest::Op::Write, fd, buf, n, "write"), d), ec);
}
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d) {
  return or_throw(detail::perform(make(detail::IoRequest::Op::Write, fd, buf, n, "write"), d),
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
  auto q = make(detail::IoRequest::Op::Poll, fd, nullptr, static_cast<std::uint16_t>(events), "poll");
  long r = detail::perform(q, d);
  if (r == -ETIMEDOUT) return 0;
  return static_cast<short>(or_throw(r, "ringlet::io::poll"));
}

}  // namespace io
}  // namespace ringlet
