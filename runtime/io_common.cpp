// Backend-independent pieces of I/O: the plain syscalls, one non-blocking attempt, and the
// plain-thread path bounded by poll(2).
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "internal/hot.hpp"
#include "internal/reactor.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

namespace {
inline long result(long r) noexcept { return r < 0 ? -errno : r; }
inline bool is_out(IoRequest::Op op) noexcept {
  using Op = IoRequest::Op;
  return op == Op::Write || op == Op::Writev || op == Op::Send || op == Op::SendMsg;
}
}  // namespace

RINGLET_HOT short poll_events(const IoRequest& req) noexcept {
  if (req.op == IoRequest::Op::Poll) return static_cast<short>(req.len);
  return is_out(req.op) ? POLLOUT : POLLIN;
}

RINGLET_HOT long do_syscall(const IoRequest& req) {
  using Op = IoRequest::Op;
  switch (req.op) {
    case Op::Read:
      return result(req.offset < 0 ? sys::read(req.fd, req.buf, req.len)
                                   : sys::pread(req.fd, req.buf, req.len, req.offset));
    case Op::Write:
      return result(req.offset < 0 ? sys::write(req.fd, req.cbuf, req.len)
                                   : sys::pwrite(req.fd, req.cbuf, req.len, req.offset));
    case Op::Readv: return result(::preadv2(req.fd, req.iov, static_cast<int>(req.len), req.offset, 0));
    case Op::Writev: return result(::pwritev2(req.fd, req.iov, static_cast<int>(req.len), req.offset, 0));
    case Op::Recv: return result(sys::recv(req.fd, req.buf, req.len, req.flags));
    case Op::Send: return result(sys::send(req.fd, req.cbuf, req.len, req.flags));
    case Op::RecvMsg: return result(sys::recvmsg(req.fd, req.msg, req.flags));
    case Op::SendMsg: return result(sys::sendmsg(req.fd, req.msg, req.flags));
    case Op::Poll: {
      pollfd p{req.fd, poll_events(req), 0};
      long r = sys::poll(&p, 1, -1);
      return r < 0 ? -errno : p.revents;
    }
    case Op::Accept:
      return result(sys::accept4(req.fd, static_cast<sockaddr*>(req.buf),
                              static_cast<socklen_t*>(req.aux), req.flags));
  }
  return -EINVAL;
}

RINGLET_HOT long attempt_nonblocking(const IoRequest& req) {
  using Op = IoRequest::Op;
  iovec one{req.buf, req.len};
  long r = 0;
  switch (req.op) {
    case Op::Read: r = ::preadv2(req.fd, &one, 1, req.offset, RWF_NOWAIT); break;
    case Op::Write: r = ::pwritev2(req.fd, &one, 1, req.offset, RWF_NOWAIT); break;
    case Op::Readv: r = ::preadv2(req.fd, req.iov, static_cast<int>(req.len), req.offset, RWF_NOWAIT); break;
    case Op::Writev: r = ::pwritev2(req.fd, req.iov, static_cast<int>(req.len), req.offset, RWF_NOWAIT); break;
    case Op::Recv: r = sys::recv(req.fd, req.buf, req.len, req.flags | MSG_DONTWAIT); break;
    case Op::Send: r = sys::send(req.fd, req.cbuf, req.len, req.flags | MSG_DONTWAIT); break;
    case Op::RecvMsg: r = sys::recvmsg(req.fd, req.msg, req.flags | MSG_DONTWAIT); break;
    case Op::SendMsg: r = sys::sendmsg(req.fd, req.msg, req.flags | MSG_DONTWAIT); break;
    case Op::Poll: {
      pollfd p{req.fd, poll_events(req), 0};
      r = sys::poll(&p, 1, 0);
      if (r > 0) return p.revents;
      return r == 0 ? -EAGAIN : -errno;
    }
    case Op::Accept:  // non-blocking only if the listener is (ringlet's are)
      r = sys::accept4(req.fd, static_cast<sockaddr*>(req.buf), static_cast<socklen_t*>(req.aux),
                    req.flags);
      break;
  }
  if (r >= 0) return r;
  if (errno == EWOULDBLOCK) return -EAGAIN;
  return -errno;
}

long perform_blocking(const IoRequest& req, Deadline d) {
  if (d.is_never()) {
    for (;;) {
      long r = do_syscall(req);
      if (r == -EAGAIN) {  // a non-blocking fd (ringlet's sockets are): wait, then again
        pollfd p{req.fd, poll_events(req), 0};
        if (sys::poll(&p, 1, -1) < 0 && errno != EINTR) return -errno;
        continue;
      }
      if (r != -EINTR) return r;
    }
  }
  for (;;) {
    const auto left = d.remaining();
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd p{req.fd, poll_events(req), 0};
    int r = sys::poll(&p, 1, static_cast<int>(ms > 0x7fffffff ? 0x7fffffff : ms));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) {
      if (d.passed()) return -ETIMEDOUT;
      continue;
    }
    if (req.op == IoRequest::Op::Poll) return p.revents;
    long res = attempt_nonblocking(req);
    if (res == -EOPNOTSUPP) res = do_syscall(req);  // ready, so it will not block long
    if (res != -EAGAIN && res != -EINTR) return res;
  }
}

}  // namespace ringlet::detail
