// Hooks of the "time" and "select" groups: sleeps, and the calls a program's own event loop
// waits in (poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2).
//
// On a fiber each first asks the kernel without waiting; if nothing is ready it parks the
// fiber on the reactor until something may be, then asks again. The answer always comes from
// the real call with a zero timeout, so what the program sees is exactly what the kernel says.
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <new>
#include <vector>

#include "internal/sys.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace ringlet::patch::detail {
namespace {

using ringlet::Deadline;

std::int64_t ns_of(const timespec& t) noexcept {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

timespec timespec_of(std::int64_t ns) noexcept {
  if (ns < 0) ns = 0;
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

std::int64_t left_ns(Deadline d) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d.remaining()).count();
}

// A signal handler ran on this thread since `at` (so an Interrupted wake is real).
bool signalled_since(const SignalCounts& at) noexcept { return thread_signals().all != at.all; }

// Sleep on the fiber until d. 0 when slept through; else errno (EINTR).
int fiber_sleep(Here h, Deadline d) noexcept {
  const SignalCounts at = thread_signals();
  for (;;) {
    const Woke o = timed_sleep(h, d);
    if (o == Woke::Deadline) return 0;
    if (o == Woke::Interrupted && !signalled_since(at)) continue;
    return EINTR;  // a signal, a kill or an enclosing Timeout ends the sleep early
  }
}

// nanosleep's rules: 0, or -1/EINTR with the time left in *rem.
int sleep_for(Here h, std::int64_t ns, timespec* rem, Call c) noexcept {
  count_on_fiber(c);
  if (ns <= 0) {
    h.s->yield_nothrow();  // sleep(0): let the others run once, as gevent.sleep(0) does
    return 0;
  }
  const Deadline d = deadline_after_ns(ns);
  count_waited(c);
  if (int e = fiber_sleep(h, d)) {
    if (rem) *rem = timespec_of(left_ns(d));
    errno = e;
    return -1;
  }
  return 0;
}

// Sets the signal mask a ppoll/pselect/epoll_pwait asks for while it waits, and puts the old
// one back: the carrier's mask, arbitrated with the other fibers' waits (signal_wait.cpp; a
// fiber thread's own mask is bookkeeping). The other fibers that run meanwhile see it too.
class MaskScope {
 public:
  explicit MaskScope(const sigset_t* mask) noexcept
      : before_(thread_signals().all), claim_(mask), signalled_(thread_signals().all != before_) {}
  bool signalled() const noexcept { return signalled_; }  // a pending signal it unblocked ran

 private:
  unsigned before_;
  WaitMask claim_;
  bool signalled_;
};

// The shared loop of the poll family: `ask` makes the real call without waiting and returns
// its answer (0 = nothing ready yet). Waits on `fds` between asks.
template <class Ask>
int wait_loop(Here h, const pollfd* fds, std::size_t n, Deadline d, Call c, Ask ask,
              const sigset_t* mask) noexcept {
  const SignalCounts at = thread_signals();
  MaskScope scope{mask};
  if (scope.signalled()) {
    errno = EINTR;
    return -1;
  }
  for (;;) {
    const IoOutcome o = wait_fds(h, fds, n, d);
    count_waited(c);
    int r = ask();
    if (r != 0) return r;
    switch (o.why) {
      case Woke::Notified:
        if (o.res == -ENOMEM) {  // no descriptor left for the wait set
          errno = ENOMEM;
          return -1;
        }
        continue;  // woken, but nothing ready by the time we asked: wait again
      case Woke::Deadline:
        return 0;
      case Woke::Interrupted:
        if (!signalled_since(at)) continue;
        errno = EINTR;
        return -1;
      case Woke::Deadlock:
        errno = ENOMEM;
        return -1;
      default:  // killed, or an enclosing Timeout
        errno = EINTR;
        return -1;
    }
  }
}

Deadline deadline_ms(int ms) noexcept {
  return ms < 0 ? Deadline::never() : deadline_after_ns(static_cast<std::int64_t>(ms) * 1'000'000);
}

RINGLET_SLOW int do_poll(pollfd* fds, nfds_t n, int timeout) noexcept {
  Here h = on_fiber(Select);
  if (!h || timeout == 0) {
    count_passed(Call::poll);
    return RINGLET_REAL(poll)(fds, n, timeout);
  }
  count_on_fiber(Call::poll);
  auto real = RINGLET_REAL(poll);
  int r = real(fds, n, 0);
  if (r != 0) return r;
  return wait_loop(h, fds, n, deadline_ms(timeout), Call::poll, [&] { return real(fds, n, 0); }, nullptr);
}

int do_ppoll(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask) noexcept {
  Here h = on_fiber(Select);
  if (!h || (tmo && tmo->tv_sec == 0 && tmo->tv_nsec == 0) ||
      (tmo && (tmo->tv_sec < 0 || tmo->tv_nsec < 0 || tmo->tv_nsec >= 1'000'000'000))) {
    count_passed(Call::ppoll);
    return RINGLET_REAL(ppoll)(fds, n, tmo, mask);
  }
  count_on_fiber(Call::ppoll);
  auto real = RINGLET_REAL(ppoll);
  const timespec zero{0, 0};
  int r = real(fds, n, &zero, mask);  // with the mask: a signal it unblocks interrupts here
  if (r != 0) return r;
  const Deadline d = tmo ? deadline_after_ns(ns_of(*tmo)) : Deadline::never();
  return wait_loop(h, fds, n, d, Call::ppoll, [&] { return real(fds, n, &zero, nullptr); }, mask);
}

// select/pselect: the sets become a poll list for the wait; the answer comes from the real
// call on fresh copies of the sets.
template <class AskReal>
int do_select_common(Here h, int nfds, fd_set* rs, fd_set* ws, fd_set* es, Deadline d, Call c,
                     AskReal ask_real, const sigset_t* mask) noexcept {
  fd_set r0, w0, e0;
  if (rs) r0 = *rs;
  if (ws) w0 = *ws;
  if (es) e0 = *es;
  auto restore = [&] {
    if (rs) *rs = r0;
    if (ws) *ws = w0;
    if (es) *es = e0;
  };
  std::vector<pollfd> fds;
  try {
    for (int fd = 0; fd < nfds; ++fd) {
      short ev = 0;
      if (rs && FD_ISSET(fd, &r0)) ev |= POLLIN;
      if (ws && FD_ISSET(fd, &w0)) ev |= POLLOUT;
      if (es && FD_ISSET(fd, &e0)) ev |= POLLPRI;
      if (ev) fds.push_back(pollfd{fd, ev, 0});
    }
  } catch (const std::bad_alloc&) {
    errno = ENOMEM;
    return -1;
  }
  int r = wait_loop(h, fds.data(), fds.size(), d, c, [&] {
    restore();
    return ask_real();
  }, mask);
  if (r < 0) restore();  // as the kernel leaves them on EINTR
  return r;
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Select;
using ringlet::patch::Time;
using ringlet::Deadline;

// --- sleeping ----------------------------------------------------------------------------

static int cancel_point_nanosleep(const timespec* req, timespec* rem) noexcept {
  Here h = on_fiber(Time);
  if (!h || !req || req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1'000'000'000) {
    count_passed(Call::nanosleep);
    return RINGLET_REAL(nanosleep)(req, rem);
  }
  return sleep_for(h, ns_of(*req), rem, Call::nanosleep);
}

RINGLET_HOOK int nanosleep(const timespec* req, timespec* rem) {
  return RINGLET_CANCEL_POINT(cancel_point_nanosleep(req, rem));
}

// A sleep on another thread's CPU clock, when that thread is a fiber thread (or main): the
// kernel does not know the clock. Natively the kernel wakes the sleeper once the thread's
// CPU time reaches the target; here the fiber sleeps for the CPU time still missing (no
// thread gains CPU time faster than the wall clock runs), reads the clock again, and so on:
// late by at most the sleep's own latency. If the thread ends first, the sleep goes on until
// a signal, as the kernel's does. -2: not such a clock.
RINGLET_SLOW static int sleep_on_cpu_clock(Here h, clockid_t clk, int flags, const timespec* req,
                                           timespec* rem) noexcept {
  std::uint64_t now = 0;
  if (!other_fiber_cpu_clock_ns(clk, &now)) return -2;
  const std::uint64_t target = (flags & TIMER_ABSTIME) ? static_cast<std::uint64_t>(ns_of(*req))
                                                       : now + static_cast<std::uint64_t>(ns_of(*req));
  const int saved = errno;
  while (now < target) {
    if (sleep_for(h, static_cast<std::int64_t>(target - now), nullptr, Call::clock_nanosleep) != 0) {
      const int e = errno;
      errno = saved;
      other_fiber_cpu_clock_ns(clk, &now);
      if (rem && !(flags & TIMER_ABSTIME)) *rem = timespec_of(now < target ? static_cast<std::int64_t>(target - now) : 0);
      return e;
    }
    other_fiber_cpu_clock_ns(clk, &now);  // an ended thread's: unchanged, the wait goes on
  }
  return 0;
}

static int cancel_point_clock_nanosleep(clockid_t clk, int flags, const timespec* req, timespec* rem) noexcept {
  Here h = on_fiber(Time);
  const bool known = clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME || clk == CLOCK_BOOTTIME ||
                     clk == CLOCK_TAI;
  if (h && clk < 0 && req && req->tv_sec >= 0 && req->tv_nsec >= 0 && req->tv_nsec < 1'000'000'000) {
    const int r = sleep_on_cpu_clock(h, clk, flags, req, rem);
    if (r != -2) return r;
  }
  if (!h || !known || !req || req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec >= 1'000'000'000) {
    count_passed(Call::clock_nanosleep);
    return RINGLET_REAL(clock_nanosleep)(clk, flags, req, rem);
  }
  std::int64_t ns = ns_of(*req);
  if (flags & TIMER_ABSTIME) {
    timespec now;
    ::clock_gettime(clk, &now);
    ns -= ns_of(now);
    rem = nullptr;  // not written for absolute sleeps
  }
  const int saved = errno;
  int r = sleep_for(h, ns, rem, Call::clock_nanosleep);
  int e = r == 0 ? 0 : errno;
  errno = saved;  // clock_nanosleep reports through its return value, not errno
  return e;
}

RINGLET_HOOK int clock_nanosleep(clockid_t clk, int flags, const timespec* req, timespec* rem) {
  return RINGLET_CANCEL_POINT(cancel_point_clock_nanosleep(clk, flags, req, rem));
}

static unsigned int cancel_point_sleep(unsigned int seconds) noexcept {
  Here h = on_fiber(Time);
  if (!h) {
    count_passed(Call::sleep);
    return RINGLET_REAL(sleep)(seconds);
  }
  timespec rem{0, 0};
  if (sleep_for(h, static_cast<std::int64_t>(seconds) * 1'000'000'000, &rem, Call::sleep) == 0) return 0;
  return static_cast<unsigned>(rem.tv_sec) + (rem.tv_nsec >= 500'000'000 ? 1 : 0);
}

RINGLET_HOOK unsigned int sleep(unsigned int seconds) {
  return RINGLET_CANCEL_POINT(cancel_point_sleep(seconds));
}

static int cancel_point_usleep(useconds_t usec) noexcept {
  Here h = on_fiber(Time);
  if (!h) {
    count_passed(Call::usleep);
    return RINGLET_REAL(usleep)(usec);
  }
  return sleep_for(h, static_cast<std::int64_t>(usec) * 1000, nullptr, Call::usleep);
}

RINGLET_HOOK int usleep(useconds_t usec) {
  return RINGLET_CANCEL_POINT(cancel_point_usleep(usec));
}

// --- poll and select ---------------------------------------------------------------------

static int cancel_point_poll(pollfd* fds, nfds_t n, int timeout) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(poll, poll, fds, n, timeout);
  return do_poll(fds, n, timeout);
}

RINGLET_HOOK int poll(pollfd* fds, nfds_t n, int timeout) {
  return RINGLET_CANCEL_POINT(cancel_point_poll(fds, n, timeout));
}

static int cancel_point___poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) noexcept {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return do_poll(fds, n, timeout);
}

RINGLET_HOOK int __poll_chk(pollfd* fds, nfds_t n, int timeout, size_t fdslen) {
  return RINGLET_CANCEL_POINT(cancel_point___poll_chk(fds, n, timeout, fdslen));
}

static int cancel_point_ppoll(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask) noexcept {
  return do_ppoll(fds, n, tmo, mask);
}

RINGLET_HOOK int ppoll(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask) {
  return RINGLET_CANCEL_POINT(cancel_point_ppoll(fds, n, tmo, mask));
}

static int cancel_point___ppoll_chk(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask, size_t fdslen) noexcept {
  if (fdslen / sizeof(pollfd) < n) __chk_fail();
  return do_ppoll(fds, n, tmo, mask);
}

RINGLET_HOOK int __ppoll_chk(pollfd* fds, nfds_t n, const timespec* tmo, const sigset_t* mask, size_t fdslen) {
  return RINGLET_CANCEL_POINT(cancel_point___ppoll_chk(fds, n, tmo, mask, fdslen));
}

static int cancel_point_select(int nfds, fd_set* rs, fd_set* ws, fd_set* es, timeval* tv) noexcept {
  Here h = on_fiber(Select);
  auto real = RINGLET_REAL(select);
  if (!h || (tv && tv->tv_sec == 0 && tv->tv_usec == 0) || nfds < 0 || nfds > FD_SETSIZE ||
      (tv && (tv->tv_sec < 0 || tv->tv_usec < 0 || tv->tv_usec >= 1'000'000))) {
    count_passed(Call::select);
    return real(nfds, rs, ws, es, tv);
  }
  count_on_fiber(Call::select);
  fd_set r0, w0, e0;
  if (rs) r0 = *rs;
  if (ws) w0 = *ws;
  if (es) e0 = *es;
  timeval zero{0, 0};
  int r = real(nfds, rs, ws, es, &zero);
  if (r != 0) return r;
  if (rs) *rs = r0;
  if (ws) *ws = w0;
  if (es) *es = e0;
  const Deadline d =
      tv ? deadline_after_ns(static_cast<std::int64_t>(tv->tv_sec) * 1'000'000'000 + tv->tv_usec * 1000)
         : Deadline::never();
  r = do_select_common(h, nfds, rs, ws, es, d, Call::select, [&] {
    timeval z{0, 0};
    return real(nfds, rs, ws, es, &z);
  }, nullptr);
  if (tv) {  // Linux tells the time left
    const std::int64_t left = d.passed() ? 0 : std::chrono::duration_cast<std::chrono::microseconds>(d.remaining()).count();
    tv->tv_sec = static_cast<time_t>(left / 1'000'000);
    tv->tv_usec = static_cast<suseconds_t>(left % 1'000'000);
  }
  return r;
}

RINGLET_HOOK int select(int nfds, fd_set* rs, fd_set* ws, fd_set* es, timeval* tv) {
  return RINGLET_CANCEL_POINT(cancel_point_select(nfds, rs, ws, es, tv));
}

static int cancel_point_pselect(int nfds, fd_set* rs, fd_set* ws, fd_set* es, const timespec* ts, const sigset_t* mask) noexcept {
  Here h = on_fiber(Select);
  auto real = RINGLET_REAL(pselect);
  if (!h || (ts && ts->tv_sec == 0 && ts->tv_nsec == 0) || nfds < 0 || nfds > FD_SETSIZE ||
      (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1'000'000'000))) {
    count_passed(Call::pselect);
    return real(nfds, rs, ws, es, ts, mask);
  }
  count_on_fiber(Call::pselect);
  fd_set r0, w0, e0;
  if (rs) r0 = *rs;
  if (ws) w0 = *ws;
  if (es) e0 = *es;
  const timespec zero{0, 0};
  int r = real(nfds, rs, ws, es, &zero, mask);
  if (r != 0) return r;
  if (rs) *rs = r0;
  if (ws) *ws = w0;
  if (es) *es = e0;
  const Deadline d = ts ? deadline_after_ns(static_cast<std::int64_t>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec)
                        : Deadline::never();
  return do_select_common(h, nfds, rs, ws, es, d, Call::pselect,
                          [&] { return real(nfds, rs, ws, es, &zero, nullptr); }, mask);
}

RINGLET_HOOK int pselect(int nfds, fd_set* rs, fd_set* ws, fd_set* es, const timespec* ts, const sigset_t* mask) {
  return RINGLET_CANCEL_POINT(cancel_point_pselect(nfds, rs, ws, es, ts, mask));
}

// --- epoll -------------------------------------------------------------------------------

static int epoll_common(int ep, epoll_event* evs, int max, int timeout, const sigset_t* mask, Call c) {
  Here h = on_fiber(Select);
  auto real = RINGLET_REAL(epoll_pwait);
  if (!h || timeout == 0 || max <= 0) {
    count_passed(c);
    return real(ep, evs, max, timeout, mask);
  }
  count_on_fiber(c);
  int r = real(ep, evs, max, 0, mask);
  if (r != 0) return r;
  // The epoll set is itself pollable: readable when one of its members is ready.
  const pollfd p{ep, POLLIN, 0};
  return wait_loop(h, &p, 1, deadline_ms(timeout), c, [&] { return real(ep, evs, max, 0, nullptr); }, mask);
}

// epoll_pwait2: epoll_pwait with a timespec timeout (NULL: none).
static int cancel_point_epoll_pwait2(int ep, epoll_event* evs, int max, const timespec* tmo, const sigset_t* mask) noexcept {
  Here h = on_fiber(Select);
  auto real = RINGLET_REAL(epoll_pwait2);
  if (!h || max <= 0 || (tmo && ((tmo->tv_sec == 0 && tmo->tv_nsec == 0) || tmo->tv_sec < 0 || tmo->tv_nsec < 0 ||
                                 tmo->tv_nsec >= 1'000'000'000))) {
    count_passed(Call::epoll_pwait2);
    return real(ep, evs, max, tmo, mask);
  }
  count_on_fiber(Call::epoll_pwait2);
  const timespec zero{0, 0};
  int r = real(ep, evs, max, &zero, mask);
  if (r != 0) return r;
  const pollfd p{ep, POLLIN, 0};
  const Deadline d = tmo ? deadline_after_ns(ns_of(*tmo)) : Deadline::never();
  return wait_loop(h, &p, 1, d, Call::epoll_pwait2, [&] { return real(ep, evs, max, &zero, nullptr); }, mask);
}

RINGLET_HOOK int epoll_pwait2(int ep, epoll_event* evs, int max, const timespec* tmo, const sigset_t* mask) {
  return RINGLET_CANCEL_POINT(cancel_point_epoll_pwait2(ep, evs, max, tmo, mask));
}

static int cancel_point_epoll_wait(int ep, epoll_event* evs, int max, int timeout) noexcept {
  return epoll_common(ep, evs, max, timeout, nullptr, Call::epoll_wait);
}

RINGLET_HOOK int epoll_wait(int ep, epoll_event* evs, int max, int timeout) {
  return RINGLET_CANCEL_POINT(cancel_point_epoll_wait(ep, evs, max, timeout));
}

static int cancel_point_epoll_pwait(int ep, epoll_event* evs, int max, int timeout, const sigset_t* mask) noexcept {
  return epoll_common(ep, evs, max, timeout, mask, Call::epoll_pwait);
}

RINGLET_HOOK int epoll_pwait(int ep, epoll_event* evs, int max, int timeout, const sigset_t* mask) {
  return RINGLET_CANCEL_POINT(cancel_point_epoll_pwait(ep, evs, max, timeout, mask));
}
