// The one wait. Every wait of ringlet goes through wait() below: I/O (the reactors park
// through it), sleeps, joins, every synchronisation primitive, and the libc hooks built on
// ringlet (mutexes, conditions, semaphores, futexes, joins). A waiter is a fiber (parked in its
// scheduler) or a plain thread (parked on a futex); the wake race is the same for both
// (first waker wins, see Waiter::claim). Internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/detail/waiter.hpp"

namespace ringlet::detail {

class Scheduler;

// How a wait ended.
enum class Woke : std::uint8_t {
  Notified,     // a waker won: granted, completed, the fiber joined has ended
  Deadline,     // the wait's own deadline passed
  Scoped,       // an enclosing ringlet::Timeout's deadline passed first
  Killed,       // kill() or the deadlock breaker's kill; the kill stays pending
  Deadlock,     // the deadlock breaker handed this (main) fiber the error
  Interrupted,  // interrupt_waits(), inside an InterruptScope
};

// What a wait is for, as the runtime counters (ringlet::stats) sort parks.
enum class WaitKind : std::uint8_t { Other, Io, Sleep, Primitive, Join };
inline constexpr unsigned kWaitKinds = 5;

// What a wait is, besides the waiter.
struct WaitSpec {
  const char* what = "wait";        // for the deadlock report
  WaitKind kind = WaitKind::Other;  // for the counters
  const Fiber* target = nullptr;    // the fiber waited for (joins)
  int fd = -1;                      // the descriptor an I/O wait is for (the fiber dump)
  // A deadline the wait does not enforce itself but that ends it (io_uring's linked
  // timeout), for the fiber dump.
  Deadline shown_deadline = Deadline::never();
  Deadline deadline = Deadline::never();
  // kill(), the deadlock breaker and an enclosing Timeout end the wait. false: only a
  // waker or `deadline` does (a kill stays pending for the next switch point).
  bool interruptible = true;
  // Who may wake it, for the deadlock breaker: `remote`, a wake is owed by another thread
  // (a thread-pool job, a fiber of another core); `any_thread`, any thread of the process
  // may (a primitive: not a proven deadlock while the process has other threads).
  bool remote = false;
  bool any_thread = false;
  // A signal handler of the program may end it (sem_post is async-signal-safe): while such a
  // wait is parked, a run with RunOptions::deadlock_waits does not call "every fiber waits"
  // a deadlock.
  bool signal_wakeable = false;
};

// Park the caller on w (armed, and published where its waker finds it) until a waker
// holding w's token wins, or the spec ends the wait. Never throws; on a plain thread only
// Notified, Deadline and Scoped are possible.
Woke wait(Waiter& w, const WaitSpec& spec) noexcept;

// The wait of a primitive: w was armed and pushed into `list` with `lk` held. Unlocks while
// parked, relocks, and unlinks w if it is still linked. Notified means granted (only a
// WaitList grant ends such a wait as notified); otherwise why it ended.
template <class Lock>
Woke wait_in(Lock& lk, WaitList& list, Waiter& w, const WaitSpec& spec) noexcept {
  lk.unlock();
  const Woke r = wait(w, spec);
  lk.lock();
  list.remove(&w);
  if (w.granted) return Woke::Notified;
  return r == Woke::Notified ? Woke::Interrupted : r;  // woken, but not granted: look again
}

// The C++ edge of a wait: Killed -> GreenletExit, Deadlock -> DeadlockError, Scoped ->
// Timeout::Expired. Returns true if the wait's own deadline passed, false if notified
// (or interrupted).
bool settle(Woke w);

// For a caller that turns kills into an action of its own at its boundary (a C library's
// hook, which cannot raise GreenletExit): whether a wait of the calling fiber ended
// Woke::Killed since the last call (cleared), and dropping its pending kill so that later
// waits are not ended by it. Both do nothing on a plain thread.
bool take_kill_wake() noexcept;
void drop_kill() noexcept;

// Ask this thread's scheduler to end, at the top of its next pass, every interruptible wait
// of its fibers made inside an InterruptScope (Woke::Interrupted). Async-signal-safe: a
// signal handler calls it (a libc hook's, so that a parked libc call answers EINTR). The
// runtime-private InterruptScope (internal/fiber_state.hpp) marks the waits it may end.
void interrupt_waits() noexcept;
// The same for the scheduler of `core` of the calling thread's run (RunOptions::threads), or
// for every scheduler of it: from a signal handler or a fiber on any core of the run.
// Async-signal-safe (a flag and an eventfd write). Nothing for a core the run does not have.
void interrupt_waits_on(unsigned core) noexcept;
void interrupt_waits_everywhere() noexcept;

// A fairness point, for a caller that just completed an operation without parking (the
// patch's hooks): a fiber that has run a whole slice (about 1 ms) without a switch gives way
// to the fibers ready now and to those the reactor's next poll wakes. Nothing on a plain
// thread or the scheduler loop; never throws, never ends a wait (it is not one).
void fair_point() noexcept;

// Park the caller on `w`, which the caller armed and pushed into `list` while holding `lk`.
// Unlocks while parked, relocks before returning, and unlinks `w` if it is still linked.
// Returns true if `w` was granted. Otherwise it raises what interrupted the wait
// (GreenletExit, Timeout::Expired, DeadlockError) or returns false if the explicit deadline
// `d` passed. With interruptible=false only a grant ends the wait (kill stays pending).
bool block(WaitLock& lk, WaitList& list, Waiter& w, Deadline d,
           const char* what, bool interruptible = true);

// The switch point at the start of a wait that is about to block: on a fiber, raise a
// pending GreenletExit or an expired Timeout.
void check_switch_point();

// A handle on a scheduler that outlives it: posting through it after the scheduler ended
// does nothing (and says so).
struct SchedulerLink {
  std::mutex mu;  // held while posting, so the scheduler cannot end in between
  Scheduler* sched = nullptr;
};
// The calling fiber's scheduler's link; null on a plain thread.
std::shared_ptr<SchedulerLink> current_link();
// Run fn in a new fiber on the linked scheduler, from any thread. False if it has ended.
bool call_soon(const std::shared_ptr<SchedulerLink>& link, std::function<void()> fn);

}  // namespace ringlet::detail
