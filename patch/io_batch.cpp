// More hooks of the "socket" group: recvmmsg, sendmmsg, splice and tee (io.cpp has the
// single-transfer calls). On a fiber, with a blocking socket or pipe: attempts that cannot
// block (MSG_DONTWAIT / SPLICE_F_NONBLOCK), and between them a wait for readiness on the
// reactor, so that the call parks its fiber thread where the kernel's would block its thread.
// The answers (counts, msg_len, errno, recvmmsg's time left) are the kernel's.
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <chrono>

#include "internal/sys.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

namespace ringlet::patch::detail {
namespace {

using ringlet::Deadline;

// Wait until fd is ready for `events`: 0, or the errno the kernel's blocking call would
// have answered: EAGAIN at the descriptor's timeout, EINTR for a signal whose handler lacks
// SA_RESTART (or any signal when the call has a timeout), a kill or a Timeout.
int wait_for(int fd, short events, Deadline d, const SignalCounts& at, Call c, const char* what) noexcept {
  for (;;) {
    const IoOutcome o = perform_patched(ringlet::detail::poll_request(fd, events, what), d);
    count_waited(c);
    if (o.why == Woke::Notified) return o.res < 0 ? static_cast<int>(-o.res) : 0;
    if (o.why == Woke::Interrupted && d.is_never() && thread_signals().no_restart == at.no_restart) continue;
    return woke_errno(o.why);
  }
}

// After a try that moved nothing (r <= 0): 0 to try again once fd is ready, else the errno
// that ends the call: the try's own error, EAGAIN if fd is non-blocking now, or the wait's.
int wait_after(int r, FdState* st, int fd, short events, Deadline d, const SignalCounts& at, Call c,
               const char* what) noexcept {
  if (r < 0 && errno != EAGAIN) return errno;
  if (kernel_nonblocking(fd, st)) return EAGAIN;
  return wait_for(fd, events, d, at, c, what);
}

std::int64_t ns_of(const timespec& t) noexcept {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// A blocking recvmmsg: waits for the first datagram (SO_RCVTIMEO bounds that wait), then
// goes on receiving until vlen are in, except that MSG_WAITFORONE returns what is there
// after the first, and `timeout` (checked after each datagram, as the kernel checks it: it
// does not bound the wait for the first) returns what came so far. An error after some
// datagrams returns their count, as the kernel does.
RINGLET_SLOW int do_recvmmsg(FdState* st, int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* tmo) noexcept {
  auto real = RINGLET_REAL(recvmmsg);
  const Deadline rcv = timeout_of(st->rcvtimeo_ns);
  const Deadline end = tmo ? deadline_after_ns(ns_of(*tmo)) : Deadline::never();
  const SignalCounts at = thread_signals();
  unsigned done = 0;
  int err = 0;
  for (;;) {
    const int r = real(fd, vec + done, vlen - done, flags | MSG_DONTWAIT, nullptr);
    if (r > 0) {
      done += static_cast<unsigned>(r);
      if (done == vlen || (flags & MSG_WAITFORONE) || (tmo && end.passed())) break;
      if (vec[done - 1].msg_hdr.msg_flags & MSG_OOB) break;  // out-of-band data: at once
      continue;
    }
    if ((err = wait_after(r, st, fd, POLLIN, rcv, at, Call::recvmmsg, "recvmmsg (patched)")) != 0) break;
  }
  if (done == 0) {
    errno = err;
    return -1;
  }
  if (tmo) {  // the time left, as the kernel writes it after each datagram
    const std::int64_t left =
        end.passed() ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(end.remaining()).count();
    tmo->tv_sec = static_cast<time_t>(left / 1'000'000'000);
    tmo->tv_nsec = static_cast<long>(left % 1'000'000'000);
  }
  return static_cast<int>(done);
}

// A blocking sendmmsg: each message sent whole, waiting for room; an error or timeout after
// some messages returns their count. On a stream socket each message goes through the
// patched sendmsg, which writes it all as the kernel's blocking sendmsg does.
RINGLET_SLOW int do_sendmmsg(FdState* st, int fd, mmsghdr* vec, unsigned vlen, int flags) noexcept {
  unsigned done = 0;
  int err = 0;
  if (st->bits.load(std::memory_order_relaxed) & kStream) {
    for (; done < vlen; ++done) {
      const ssize_t r = ::sendmsg(fd, &vec[done].msg_hdr, flags);
      if (r < 0) {
        err = errno;
        break;
      }
      vec[done].msg_len = static_cast<unsigned>(r);
    }
  } else {
    auto real = RINGLET_REAL(sendmmsg);
    const Deadline snd = timeout_of(st->sndtimeo_ns);
    const SignalCounts at = thread_signals();
    while (done < vlen) {
      const int r = real(fd, vec + done, vlen - done, flags | MSG_DONTWAIT);
      if (r > 0) {
        done += static_cast<unsigned>(r);
        continue;
      }
      if ((err = wait_after(r, st, fd, POLLOUT, snd, at, Call::sendmmsg, "sendmmsg (patched)")) != 0) break;
    }
  }
  if (done == 0 && vlen > 0) {
    errno = err;
    return -1;
  }
  return static_cast<int>(done);
}

bool ready(int fd, short events) noexcept {
  pollfd p{fd, events, 0};
  return ringlet::detail::sys::poll(&p, 1, 0) != 0;
}

// splice/tee between blocking ends: the call with SPLICE_F_NONBLOCK, and on EAGAIN a wait
// for whichever end is not ready (the input readable, else the output writable). `call`
// makes the real call with the flags it is given.
template <class Call_>
RINGLET_SLOW ssize_t splice_loop(int in, int out, FdState* sin, FdState* sout, unsigned flags, Call c,
                                 const char* what, Call_ call) noexcept {
  // SO_RCVTIMEO of a socket read from, SO_SNDTIMEO of one written to
  const Deadline din = sin ? timeout_of(sin->rcvtimeo_ns) : Deadline::never();
  const Deadline dout = sout ? timeout_of(sout->sndtimeo_ns) : Deadline::never();
  const SignalCounts at = thread_signals();
  for (;;) {
    const ssize_t r = call(flags | SPLICE_F_NONBLOCK);
    if (r >= 0 || errno != EAGAIN) return r;
    int e;
    if (!ready(in, POLLIN)) e = wait_for(in, POLLIN, din, at, c, what);
    else if (!ready(out, POLLOUT)) e = wait_for(out, POLLOUT, dout, at, c, what);
    else {
      // Both ready, and still EAGAIN (a pipe with room for less than a page, say): look
      // again in a millisecond.
      const Woke w = timed_sleep(Here{Scheduler::current(), nullptr}, deadline_after_ns(1'000'000));
      e = w == Woke::Deadline ? 0 : woke_errno(w);
      if (w == Woke::Interrupted && thread_signals().no_restart == at.no_restart) e = 0;
    }
    if (e) {
      errno = e;
      return -1;
    }
  }
}

// Both ends' entries when the call may wait on the reactor: neither end is non-blocking (the
// kernel's answer stays EAGAIN then) and at least one is a socket or pipe we can wait for.
bool splice_ends(int in, int out, FdState*& sin, FdState*& sout) noexcept {
  FdState* a = fd_classified(in);
  FdState* b = fd_classified(out);
  if (!a || !b) return false;
  if (kernel_nonblocking(in, a) || kernel_nonblocking(out, b)) return false;
  sin = managed_fd(in);
  sout = managed_fd(out);
  return sin || sout;
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Socket;

static int cancel_point_recvmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* tmo) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) && vlen > 0 ? managed_fd(fd) : nullptr;
  if (!st || (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1'000'000'000))) {
    count_passed(Call::recvmmsg);
    return RINGLET_REAL(recvmmsg)(fd, vec, vlen, flags, tmo);
  }
  count_on_fiber(Call::recvmmsg);
  return do_recvmmsg(st, fd, vec, vlen, flags, tmo);
}

RINGLET_HOOK int recvmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* tmo) {
  const int r = RINGLET_CANCEL_POINT(cancel_point_recvmmsg(fd, vec, vlen, flags, tmo));
  for (int i = 0; i < r; ++i)
    if (vec[i].msg_hdr.msg_controllen > 0) fds_received(&vec[i].msg_hdr);
  return r;
}

static int cancel_point_sendmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags) noexcept {
  Here h = on_fiber(Socket);
  FdState* st = h && !(flags & MSG_DONTWAIT) && vlen > 0 ? managed_fd(fd) : nullptr;
  if (!st || !(st->bits.load(std::memory_order_relaxed) & kSocket)) {
    count_passed(Call::sendmmsg);
    return RINGLET_REAL(sendmmsg)(fd, vec, vlen, flags);
  }
  count_on_fiber(Call::sendmmsg);
  return do_sendmmsg(st, fd, vec, vlen, flags);
}

RINGLET_HOOK int sendmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags) {
  for (unsigned i = 0; vec && i < vlen; ++i)
    if (vec[i].msg_hdr.msg_controllen > 0) fds_sent(&vec[i].msg_hdr);  // before, as sendmsg
  return RINGLET_CANCEL_POINT(cancel_point_sendmmsg(fd, vec, vlen, flags));
}

static ssize_t cancel_point_splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len, unsigned flags) noexcept {
  Here h = on_fiber(Socket);
  FdState *sin = nullptr, *sout = nullptr;
  if (!h || (flags & SPLICE_F_NONBLOCK) || len == 0 || !splice_ends(in, out, sin, sout)) {
    count_passed(Call::splice);
    return RINGLET_REAL(splice)(in, off_in, out, off_out, len, flags);
  }
  count_on_fiber(Call::splice);
  auto real = RINGLET_REAL(splice);
  return splice_loop(in, out, sin, sout, flags, Call::splice, "splice (patched)",
                     [&](unsigned f) { return real(in, off_in, out, off_out, len, f); });
}

RINGLET_HOOK ssize_t splice(int in, loff_t* off_in, int out, loff_t* off_out, size_t len, unsigned flags) {
  return RINGLET_CANCEL_POINT(cancel_point_splice(in, off_in, out, off_out, len, flags));
}

static ssize_t cancel_point_tee(int in, int out, size_t len, unsigned flags) noexcept {
  Here h = on_fiber(Socket);
  FdState *sin = nullptr, *sout = nullptr;
  if (!h || (flags & SPLICE_F_NONBLOCK) || len == 0 || !splice_ends(in, out, sin, sout)) {
    count_passed(Call::tee);
    return RINGLET_REAL(tee)(in, out, len, flags);
  }
  count_on_fiber(Call::tee);
  auto real = RINGLET_REAL(tee);
  return splice_loop(in, out, sin, sout, flags, Call::tee, "tee (patched)",
                     [&](unsigned f) { return real(in, out, len, f); });
}

RINGLET_HOOK ssize_t tee(int in, int out, size_t len, unsigned flags) {
  return RINGLET_CANCEL_POINT(cancel_point_tee(in, out, len, flags));
}
