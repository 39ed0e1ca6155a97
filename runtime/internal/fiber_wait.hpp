// A fiber's wait, inline: detail::wait's path for a fiber (wait.cpp), and the io_uring
// engine's (uring_reactor.cpp), which calls it directly so that a parked fiber's stack holds
// one frame fewer to resume through (every line of it is a cache miss when many fibers take
// turns).
#pragma once

#include "internal/fiber_state.hpp"
#include "internal/scheduler.hpp"
#include "ringlet/detail/wait.hpp"

namespace ringlet::detail {

// The deadlock breaker's bookkeeping for one wait, undone however the wait ends.
class WaitAccount {
 public:
  WaitAccount(Scheduler& s, const WaitSpec& spec) noexcept
      : s_(s), remote_(spec.remote), any_thread_(spec.any_thread), by_signal_(spec.signal_wakeable) {
    if (remote_) s_.expect_remote_wake();
    if (any_thread_) s_.primitive_wait_begin();
    if (by_signal_) s_.signal_wait_begin();
  }
  ~WaitAccount() {
    if (by_signal_) s_.signal_wait_end();
    if (any_thread_) s_.primitive_wait_end();
    if (remote_) s_.remote_wake_done();
  }
  WaitAccount(const WaitAccount&) = delete;
  WaitAccount& operator=(const WaitAccount&) = delete;

 private:
  Scheduler& s_;
  bool remote_;
  bool any_thread_;
  bool by_signal_;
};

// A timed-out wait: the wait's own deadline, or an enclosing Timeout's that came first.
inline Woke timed_out(Deadline own, Deadline scoped) noexcept {
  return scoped < own ? Woke::Scoped : Woke::Deadline;
}

// A fiber's wait on `token` (its epoch when it armed). Inlined into wait(), into block(), the
// path of every contended primitive (a lock hand-off pays for each call and branch here),
// and into the io_uring engine's submit_and_park.
__attribute__((always_inline)) inline Woke fiber_wait(Fiber* f, std::uint64_t token,
                                                      const WaitSpec& spec) noexcept {
  Scheduler& s = *st(f).sched;
  const Deadline scoped = spec.interruptible ? st(f).deadline.deadline : Deadline::never();
  WaitAccount account(s, spec);
  // Counted here, not from the parked fiber's WaitInfo: a kind byte there, though it fits in
  // the struct's padding, made bench_spawn 25-35 % slower (release build; cause not found).
  s.counters().parks[static_cast<unsigned>(spec.kind)].add();
  const WakeReason r = s.park(token, earliest(spec.deadline, scoped), WaitInfo{spec.what, spec.target,
                                       spec.deadline.is_never() ? spec.shown_deadline : spec.deadline, spec.fd},
                              spec.interruptible);
  switch (r) {
    case WakeReason::None:
    case WakeReason::Notified: return Woke::Notified;
    case WakeReason::TimedOut: return timed_out(spec.deadline, scoped);
    case WakeReason::Killed:
      st(f).kill_woke = true;
      return Woke::Killed;
    case WakeReason::Deadlock: return Woke::Deadlock;
    case WakeReason::Interrupted: return Woke::Interrupted;
  }
  return Woke::Notified;
}

}  // namespace ringlet::detail
