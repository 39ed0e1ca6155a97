// Hooks of the "socket" group: reading and writing descriptors, and sendfile (creating,
// accepting and connecting sockets are sockets.cpp; closing, duplicating and the descriptor
// flags fd.cpp).
//
// On a fiber, for a socket, pipe, FIFO or terminal the program left blocking: one attempt
// that cannot block (MSG_DONTWAIT / RWF_NOWAIT), then a wait on the reactor. Everything else
// — no fiber, a regular file, a descriptor the program made non-blocking, the group turned
// off — is the real libc call.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <vector>

#include "internal/io.hpp"
#include "internal/sys.hpp"
#include "io_wait.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace ringlet::patch::detail {
namespace {

using ringlet::Deadline;
using Op = IoRequest::Op;

inline long ret(long r) noexcept {
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

// The attempt hint (FdState::misses): after kSkipAfter calls in a row on this descriptor and
// direction found nothing at their attempt (ping-pong: the peer has not sent the next
// message yet), a call skips it and goes to the engine, if the engine tries the operation
// inline at no system call of its own (io_uring); every kProbeEvery-th call attempts again,
// and one that finds something starts the count over. Either path gives the same answer.
constexpr std::uint32_t kSkipAfter = 2, kProbeEvery = 16;

inline std::atomic<std::uint32_t>* misses_of(FdState* st, const IoRequest& req) noexcept {
  if (!st) return nullptr;
  const bool rd = req.op == Op::Read || req.op == Op::Readv || req.op == Op::Recv || req.op == Op::RecvMsg;
  return &st->misses[rd ? 0 : 1];
}

inline bool skip_attempt(std::uint32_t m) noexcept {
  return m >= kSkipAfter && m % kProbeEvery != 0 && Scheduler::current()->reactor().tries_inline();
}

// One operation that may block: an attempt that cannot (unless the hint above skips it),
// then the runtime's perform until it is done, the descriptor's timeout passes (EAGAIN, as
// SO_RCVTIMEO says), a signal handler runs (EINTR, or a restart if the handler has
// SA_RESTART and the call has no timeout), or the fiber is killed (EINTR; the kill is
// raised later in C++).
long one_op_attempts(FdState* st, const IoRequest& req, Deadline d, Call c) noexcept {
  const SignalCounts at = thread_signals();
  std::atomic<std::uint32_t>* misses = misses_of(st, req);
  for (;;) {
    const std::uint32_t m = misses ? misses->load(std::memory_order_relaxed) : 0;
    // Nor when the engine knows the queue is empty and will park without trying (epoll).
    const bool tried = !skip_attempt(m) &&
                       !(req.plain_reads && Scheduler::current()->reactor().knows_nothing_queued(req));
    long r = tried ? ringlet::detail::attempt_nonblocking(req) : -EAGAIN;
    if (misses) {
      if (r == -EAGAIN) misses->store(m + 1, std::memory_order_relaxed);
      else if (m != 0) misses->store(0, std::memory_order_relaxed);
    }
    if (r != -EAGAIN && r != -EOPNOTSUPP) {
      // Done without parking: a thread that always finds its next request waiting would
      // keep its carrier from the others (the kernel would time-slice it); after a slice
      // without a switch it gives way here.
      ringlet::detail::fair_point();
      return r;
    }
    // Not tried: the descriptor's own non-blocking answer is the call itself.
    if (kernel_nonblocking(req.fd, st)) return tried && r == -EAGAIN ? r : ringlet::detail::do_syscall(req);
    IoOutcome o;
    if (r == -EOPNOTSUPP) {
      // Cannot be tried without blocking (a terminal): wait until ready, then call it.
      o = perform_patched(ringlet::detail::poll_request(req.fd, ringlet::detail::poll_events(req), req.what), d);
      if (o.why == Woke::Notified && o.res >= 0) {
        o.res = ringlet::detail::do_syscall(req);
        if (o.res == -EAGAIN) continue;  // made non-blocking meanwhile: ask again
      }
    } else {
      // One call whether tried or not: threads parked in the same call show one stack (the
      // fiber dump groups them by it).
      IoRequest q = req;
      q.just_tried = tried;  // its EAGAIN above; no switch point since
      o = perform_patched(q, d);
    }
    count_waited(c);
    if (o.why == Woke::Notified) return o.res;
    if (restarts(o.why, d, at)) continue;  // SA_RESTART: the kernel would have restarted it
    return -woke_errno(o.why);
  }
}

// The result carries the error (-errno); errno itself is left as the caller had it, as the
// kernel's call leaves it when it succeeds (the non-blocking attempt's EAGAIN, the reactor's
// own calls must not show through a read that parked and then succeeded).
long one_op(FdState* st, const IoRequest& req, Deadline d, Call c) noexcept {
  const int saved = errno;
  const long r = one_op_attempts(st, req, d, c);
  errno = saved;
  return r;
}

// Advance an iovec array past n bytes (for the rest of a partial transfer).
void advance(std::vector<iovec>& v, std::size_t& first, std::size_t n) noexcept {
  while (first < v.size() && n >= v[first].iov_len) n -= v[first++].iov_len;
  if (first < v.size() && n > 0) {
    v[first].iov_base = static_cast<char*>(v[first].iov_base) + n;
    v[first].iov_len -= n;
  }
}

// A blocking stream transfer moves everything unless interrupted: a blocking write on a
// socket or pipe returns only when all of it is written (or with what was written before a
// signal, timeout or error). recv(MSG_WAITALL) the same way.
long all_of(FdState* st, IoRequest req, Deadline d, Call c, std::size_t total) noexcept {
  std::size_t done = 0;
  while (done < total) {
    long r = one_op(st, req, d, c);
    if (r < 0) return done > 0 ? static_cast<long>(done) : r;
    if (r == 0) break;  // EOF (MSG_WAITALL)
    done += static_cast<std::size_t>(r);
    req.buf = static_cast<char*>(req.buf) + r;
    req.len -= static_cast<std::uint32_t>(r);
  }
  return static_cast<long>(done);
}

long all_of_vec(FdState* st, IoRequest req, const iovec* iov, int n, Deadline d, Call c) noexcept {
  std::size_t total = 0;
  for (int i = 0; i < n; ++i) total += iov[i].iov_len;
  long r = one_op(st, req, d, c);
  if (r < 0 || static_cast<std::size_t>(r) >= total) return r;
  // A partial write: go on with a copy of the vector.
  std::vector<iovec> v(iov, iov + n);
  std::size_t first = 0, done = static_cast<std::size_t>(r);
  advance(v, first, done);
  msghdr m{};
  while (done < total) {
    IoRequest q = req;
    if (req.op == Op::SendMsg) {
      m = *req.msg;
      m.msg_iov = v.data() + first;
      m.msg_iovlen = v.size() - first;
      q.msg = &m;
    } else {
      q.iov = v.data() + first;
      q.len = static_cast<std::uint32_t>(v.size() - first);
    }
    long k = one_op(st, q, d, c);
    if (k <= 0) break;
    done += static_cast<std::size_t>(k);
    advance(v, first, static_cast<std::size_t>(k));
  }
  return static_cast<long>(done);
}

IoRequest buf_req(Op op, int fd, const void* buf, std::size_t n, int flags, const char* what) noexcept {
  return ringlet::detail::buffer_request(op, fd, buf, n, flags, what);
}

// readv/writev: a recvmsg/sendmsg on a socket (MSG_DONTWAIT works there), else the plain
// vectored call. m holds the socket's message header.
IoRequest vector_req(const FdState* st, int fd, const iovec* iov, int n, msghdr& m, bool out) noexcept {
  IoRequest q;
  q.fd = fd;
  q.what = out ? "writev (patched)" : "readv (patched)";
  if (st->bits.load(std::memory_order_relaxed) & kSocket) {
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<std::size_t>(n);
    q.op = out ? Op::SendMsg : Op::RecvMsg;
    q.msg = &m;
  } else {
    q.op = out ? Op::Writev : Op::Readv;
    q.iov = iov;
    q.len = static_cast<std::uint32_t>(n);
  }
  return q;
}

bool is_stream(const FdState* st) noexcept { return st->bits.load(std::memory_order_relaxed) & kStream; }

// A read from a stream socket, while the program has set no option that shapes reads
// (g_reads_shaped): a short read means the receive queue was empty (IoRequest::plain_reads).
IoRequest plain_if_stream(const FdState* st, IoRequest q) noexcept {
  q.plain_reads = (st->bits.load(std::memory_order_relaxed) & (kSocket | kStream)) == (kSocket | kStream) &&
                  !g_reads_shaped.load(std::memory_order_relaxed);
  return q;
}

RINGLET_SLOW long do_read(int fd, void* buf, std::size_t n) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  if (!st) {
    // A blocking signalfd: only its reads wait (signal_wait.cpp); every other call on it
    // passes through.
    if (FdState* s = h ? fd_state(fd) : nullptr;
        s && (s->bits.load(std::memory_order_relaxed) & (kSignalfd | kNonblock)) == kSignalfd) {
      count_on_fiber(Call::read);
      return signalfd_read(s, fd, buf, n);
    }
    count_passed(Call::read);
    return RINGLET_REAL(read)(fd, buf, n);
  }
  count_on_fiber(Call::read);
  const bool sock = st->bits.load(std::memory_order_relaxed) & kSocket;
  return ret(one_op(st, plain_if_stream(st, buf_req(sock ? Op::Recv : Op::Read, fd, buf, n, 0, "read (patched)")),
                    timeout_of(st->rcvtimeo_ns), Call::read));
}

RINGLET_SLOW long do_recv(int fd, void* buf, std::size_t n, int flags) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(Call::recv);
    return RINGLET_REAL(recv)(fd, buf, n, flags);
  }
  count_on_fiber(Call::recv);
  IoRequest q = plain_if_stream(st, buf_req(Op::Recv, fd, buf, n, flags, "recv (patched)"));
  const Deadline d = timeout_of(st->rcvtimeo_ns);
  if ((flags & MSG_WAITALL) && is_stream(st)) return ret(all_of(st, q, d, Call::recv, q.len));
  return ret(one_op(st, q, d, Call::recv));
}

RINGLET_SLOW long do_recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* addr, socklen_t* alen) noexcept {
  if (!addr) return do_recv(fd, buf, n, flags);
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(Call::recvfrom);
    return RINGLET_REAL(recvfrom)(fd, buf, n, flags, addr, alen);
  }
  count_on_fiber(Call::recvfrom);
  iovec v{buf, n};
  msghdr m{};
  m.msg_name = addr;
  m.msg_namelen = alen ? *alen : 0;
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  IoRequest q;
  q.op = Op::RecvMsg;
  q.fd = fd;
  q.msg = &m;
  q.flags = flags;
  q.what = "recvfrom (patched)";
  long r = one_op(st, q, timeout_of(st->rcvtimeo_ns), Call::recvfrom);
  if (r >= 0 && alen) *alen = m.msg_namelen;
  return ret(r);
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Socket;
using ringlet::Deadline;
using Op = ringlet::detail::IoRequest::Op;

// --- reading -----------------------------------------------------------------------------

static ssize_t cancel_point_read(int fd, void* buf, size_t n) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(read, read, fd, buf, n);
  return do_read(fd, buf, n);
}

RINGLET_HOOK ssize_t read(int fd, void* buf, size_t n) {
  return RINGLET_CANCEL_POINT(cancel_point_read(fd, buf, n));
}

static ssize_t cancel_point___read_chk(int fd, void* buf, size_t n, size_t buflen) noexcept {
  if (n > buflen) __chk_fail();
  return do_read(fd, buf, n);
}

RINGLET_HOOK ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  return RINGLET_CANCEL_POINT(cancel_point___read_chk(fd, buf, n, buflen));
}

static ssize_t cancel_point_recv(int fd, void* buf, size_t n, int flags) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(recv, recv, fd, buf, n, flags);
  return do_recv(fd, buf, n, flags);
}

RINGLET_HOOK ssize_t recv(int fd, void* buf, size_t n, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point_recv(fd, buf, n, flags));
}

static ssize_t cancel_point___recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) noexcept {
  if (n > buflen) __chk_fail();
  return do_recv(fd, buf, n, flags);
}

RINGLET_HOOK ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point___recv_chk(fd, buf, n, buflen, flags));
}

static ssize_t cancel_point_recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* alen) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(recvfrom, recvfrom, fd, buf, n, flags, addr, alen);
  return do_recvfrom(fd, buf, n, flags, addr, alen);
}

RINGLET_HOOK ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* alen) {
  return RINGLET_CANCEL_POINT(cancel_point_recvfrom(fd, buf, n, flags, addr, alen));
}

static ssize_t cancel_point___recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                                    socklen_t* alen) noexcept {
  if (n > buflen) __chk_fail();
  return do_recvfrom(fd, buf, n, flags, addr, alen);
}

RINGLET_HOOK ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                                    socklen_t* alen) {
  return RINGLET_CANCEL_POINT(cancel_point___recvfrom_chk(fd, buf, n, buflen, flags, addr, alen));
}

static ssize_t cancel_point_readv(int fd, const iovec* iov, int n) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  if (!st || n <= 0) {
    count_passed(Call::readv);
    return RINGLET_REAL(readv)(fd, iov, n);
  }
  count_on_fiber(Call::readv);
  msghdr m{};
  const IoRequest q = vector_req(st, fd, iov, n, m, false);
  return ret(one_op(st, q, timeout_of(st->rcvtimeo_ns), Call::readv));
}

RINGLET_HOOK ssize_t readv(int fd, const iovec* iov, int n) {
  return RINGLET_CANCEL_POINT(cancel_point_readv(fd, iov, n));
}

static ssize_t cancel_point_recvmsg(int fd, msghdr* msg, int flags) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(Call::recvmsg);
    return RINGLET_REAL(recvmsg)(fd, msg, flags);
  }
  count_on_fiber(Call::recvmsg);
  IoRequest q;
  q.op = Op::RecvMsg;
  q.fd = fd;
  q.msg = msg;
  q.flags = flags;
  q.what = "recvmsg (patched)";
  return ret(one_op(st, q, timeout_of(st->rcvtimeo_ns), Call::recvmsg));
}

RINGLET_HOOK ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  const ssize_t r = RINGLET_CANCEL_POINT(cancel_point_recvmsg(fd, msg, flags));
  if (r >= 0 && msg && msg->msg_controllen > 0) fds_received(msg);
  return r;
}

// --- writing -----------------------------------------------------------------------------

static RINGLET_SLOW ssize_t do_write(int fd, const void* buf, size_t n) {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(Call::write);
    return RINGLET_REAL(write)(fd, buf, n);
  }
  count_on_fiber(Call::write);
  const bool sock = st->bits.load(std::memory_order_relaxed) & kSocket;
  IoRequest q = buf_req(sock ? Op::Send : Op::Write, fd, buf, n, 0, "write (patched)");
  const Deadline d = timeout_of(st->sndtimeo_ns);
  if (is_stream(st)) return ret(all_of(st, q, d, Call::write, q.len));
  return ret(one_op(st, q, d, Call::write));
}

static ssize_t cancel_point_write(int fd, const void* buf, size_t n) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(write, write, fd, buf, n);
  return do_write(fd, buf, n);
}

RINGLET_HOOK ssize_t write(int fd, const void* buf, size_t n) {
  return RINGLET_CANCEL_POINT(cancel_point_write(fd, buf, n));
}

static RINGLET_SLOW ssize_t send_common(int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                                        socklen_t tolen, Call c) {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(c);
    return to ? RINGLET_REAL(sendto)(fd, buf, n, flags, to, tolen) : RINGLET_REAL(send)(fd, buf, n, flags);
  }
  count_on_fiber(c);
  const Deadline d = timeout_of(st->sndtimeo_ns);
  if (!to) {
    IoRequest q = buf_req(Op::Send, fd, buf, n, flags, "send (patched)");
    if (is_stream(st)) return ret(all_of(st, q, d, c, q.len));
    return ret(one_op(st, q, d, c));
  }
  iovec v{const_cast<void*>(buf), n};
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(to);
  m.msg_namelen = tolen;
  m.msg_iov = &v;
  m.msg_iovlen = 1;
  IoRequest q;
  q.op = Op::SendMsg;
  q.fd = fd;
  q.msg = &m;
  q.flags = flags;
  q.what = "sendto (patched)";
  if (is_stream(st)) return ret(all_of_vec(st, q, &v, 1, d, c));
  return ret(one_op(st, q, d, c));
}

static ssize_t cancel_point_send(int fd, const void* buf, size_t n, int flags) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(send, send, fd, buf, n, flags);
  return send_common(fd, buf, n, flags, nullptr, 0, Call::send);
}

RINGLET_HOOK ssize_t send(int fd, const void* buf, size_t n, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point_send(fd, buf, n, flags));
}
static ssize_t cancel_point_sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(sendto, sendto, fd, buf, n, flags, to, tolen);
  return send_common(fd, buf, n, flags, to, tolen, Call::sendto);
}

RINGLET_HOOK ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t tolen) {
  return RINGLET_CANCEL_POINT(cancel_point_sendto(fd, buf, n, flags, to, tolen));
}

static ssize_t cancel_point_writev(int fd, const iovec* iov, int n) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(fd) : nullptr;
  if (!st || n <= 0) {
    count_passed(Call::writev);
    return RINGLET_REAL(writev)(fd, iov, n);
  }
  count_on_fiber(Call::writev);
  msghdr m{};
  const IoRequest q = vector_req(st, fd, iov, n, m, true);
  const Deadline d = timeout_of(st->sndtimeo_ns);
  if (is_stream(st)) return ret(all_of_vec(st, q, iov, n, d, Call::writev));
  return ret(one_op(st, q, d, Call::writev));
}

RINGLET_HOOK ssize_t writev(int fd, const iovec* iov, int n) {
  return RINGLET_CANCEL_POINT(cancel_point_writev(fd, iov, n));
}

static ssize_t cancel_point_sendmsg(int fd, const msghdr* msg, int flags) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) ? managed_fd(fd) : nullptr;
  if (!st) {
    count_passed(Call::sendmsg);
    return RINGLET_REAL(sendmsg)(fd, msg, flags);
  }
  count_on_fiber(Call::sendmsg);
  IoRequest q;
  q.op = Op::SendMsg;
  q.fd = fd;
  q.msg = const_cast<msghdr*>(msg);
  q.flags = flags;
  q.what = "sendmsg (patched)";
  const Deadline d = timeout_of(st->sndtimeo_ns);
  if (is_stream(st) && msg->msg_iovlen > 0)
    return ret(all_of_vec(st, q, msg->msg_iov, static_cast<int>(msg->msg_iovlen), d, Call::sendmsg));
  return ret(one_op(st, q, d, Call::sendmsg));
}

RINGLET_HOOK ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  if (msg && msg->msg_controllen > 0) fds_sent(msg);  // before: the receiver may act at once
  return RINGLET_CANCEL_POINT(cancel_point_sendmsg(fd, msg, flags));
}

// --- sendfile ----------------------------------------------------------------------------

// sendfile into a blocking socket would block the whole thread (and with threads as fibers,
// the fiber that should read the other end). The socket is made non-blocking for the call
// only, as connect does (a window program_flags hides from the program and the other
// carriers' hooks); on EAGAIN the fiber waits for room on the reactor. Like the real call
// it may send fewer bytes than asked.
static ssize_t sendfile_common(int out, int in, off_t* offset, size_t count) {
  Here h = on_fiber(Socket);
  FdState* st = h ? managed_fd(out) : nullptr;
  if (!st || !(st->bits.load(std::memory_order_relaxed) & kSocket)) {
    count_passed(Call::sendfile);
    return RINGLET_REAL(sendfile)(out, in, offset, count);
  }
  count_on_fiber(Call::sendfile);
  const Deadline d = timeout_of(st->sndtimeo_ns);
  const SignalCounts at = thread_signals();
  for (;;) {
    const int fl = program_flags(out, st);
    if (fl < 0) return RINGLET_REAL(sendfile)(out, in, offset, count);
    if (!(fl & O_NONBLOCK)) {
      nonblock_window_open(st);
      ringlet::detail::sys::fcntl(out, F_SETFL, fl | O_NONBLOCK);
    }
    const ssize_t r = RINGLET_REAL(sendfile)(out, in, offset, count);
    const int e = errno;
    if (!(fl & O_NONBLOCK)) {
      ringlet::detail::sys::fcntl(out, F_SETFL, fl);
      nonblock_window_close(st);
    }
    if (r >= 0 || e != EAGAIN || (fl & O_NONBLOCK)) {
      if (r >= 0) ringlet::detail::fair_point();  // as one_op_attempts: a slice, then give way
      errno = e;
      return r;
    }
    if (wait_ready(out, POLLOUT, d, at, Call::sendfile, "sendfile (patched)") < 0) return -1;
  }
}

RINGLET_HOOK ssize_t sendfile(int out, int in, off_t* offset, size_t count) {
  return sendfile_common(out, in, offset, count);
}
RINGLET_HOOK ssize_t sendfile64(int out, int in, off64_t* offset, size_t count) {
  static_assert(sizeof(off64_t) == sizeof(off_t));
  return sendfile_common(out, in, reinterpret_cast<off_t*>(offset), count);
}
