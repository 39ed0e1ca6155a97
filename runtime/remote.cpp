// The cross-core side of a scheduler: wake-ups, spawns, tasks and calls posted by other
// threads (a lock-free stack of woken fibers, a spin-locked queue for the rest), the ring
// that wakes a sleeping loop, the spin before sleeping, and a group's shared counts.
#include <algorithm>

#include "internal/scheduler.hpp"

namespace ringlet::detail {

bool Scheduler::spin_for_remote() noexcept {
  const auto start = Clock::now();
  auto limit = start + spin_window_;
  if (!timers_.empty() && timers_.top()->when < limit) limit = timers_.top()->when;
  counters_.idle_spins.add();
  for (unsigned i = 1;; ++i) {
    if (remote_posted(std::memory_order_acquire)) {
      spin_credit_ = kSpinCredit;
      counters_.idle_spins_found.add();
      counters_.idle_spin_ns.add(static_cast<std::uint64_t>(std::chrono::nanoseconds(Clock::now() - start).count()));
      return true;
    }
    __builtin_ia32_pause();
    if (i % 64 == 0) {
      const auto now = Clock::now();
      if (now >= limit) {
        counters_.idle_spin_ns.add(static_cast<std::uint64_t>(std::chrono::nanoseconds(now - start).count()));
        break;
      }
    }
  }
  --spin_credit_;
  return false;
}

bool Scheduler::finished_everywhere() noexcept {
  return group_->live_nondaemon.load(std::memory_order_acquire) == 0;
}

void Scheduler::count_finished(bool daemon) noexcept {
  if (!group_) return;
  if (!daemon && group_->live_nondaemon.fetch_sub(1, std::memory_order_acq_rel) == 1)
    group_->broadcast();  // daemons everywhere are to be killed
  if (group_->live.fetch_sub(1, std::memory_order_acq_rel) == 1) group_->broadcast();
}

void Scheduler::abandon(Fiber* f, std::exception_ptr error) noexcept {
  f->error = std::move(error);
  {
    std::lock_guard<SpinLock> lock(st(f).join_lock);
    f->finished.store(true, std::memory_order_seq_cst);
    st(f).joiners.grant_all();
  }
  if (f->handles.load(std::memory_order_seq_cst) == 0) report_unobserved(f);
  count_finished(st(f).daemon);
  f->release();  // the creation reference
}

void CoreGroup::broadcast() noexcept {
  for (Scheduler* s : scheds)
    if (s) s->reactor().notify();
}

// A lock-free stack (pushes only; the loop takes it whole): one compare-and-swap per wake.
void Scheduler::post_remote(Fiber* f) noexcept {
  if (Scheduler* me = tls_current_) me->counters_.remote_sent.add();  // a plain thread's: no core's
  Fiber* head = inbox_.woken.load(std::memory_order_relaxed);
  do {
    st(f).remote_next = head;
  } while (!inbox_.woken.compare_exchange_weak(head, f, std::memory_order_seq_cst,
                                                std::memory_order_relaxed));
  note_post();
  if (!head) ring_if_sleeping();  // the first of a burst
}

void Scheduler::post_task(std::function<void()> fn) {
  {
    std::lock_guard<SpinLock> lock(inbox_.mu);
    inbox_.tasks.push_back(std::move(fn));
  }
  const bool was_pending = inbox_.pending.exchange(true, std::memory_order_seq_cst);
  note_post();
  if (!was_pending) ring_if_sleeping();
}

void Scheduler::post_spawn(Fiber* f, const SpawnOptions& opts) {
  {
    std::lock_guard<SpinLock> lock(inbox_.mu);
    inbox_.spawns.push_back(Inbox::Spawn{f, opts});
  }
  const bool was_pending = inbox_.pending.exchange(true, std::memory_order_seq_cst);
  note_post();
  if (!was_pending) ring_if_sleeping();
}

void Scheduler::post_call(std::function<void()> fn) {
  {
    std::lock_guard<SpinLock> lock(inbox_.mu);
    inbox_.calls.push_back(std::move(fn));
  }
  const bool was_pending = inbox_.pending.exchange(true, std::memory_order_seq_cst);
  note_post();
  if (!was_pending) ring_if_sleeping();
}

// Only the first post of a burst gets here, and it rings only if the loop sleeps: a loop
// that is awake drains the queue before it sleeps again. A poster on another core of the
// same run rings with a message sent at once through its own ring (Reactor::ring); anyone
// else writes the eventfd at once. Only a core of the same group: a message that fails comes
// back later, naming its target, and a group's schedulers all outlive every loop of it, where
// an unrelated scheduler (another run's, on another thread) may be gone by then.
void Scheduler::ring_if_sleeping() noexcept {
  if (!inbox_.sleeping.load(std::memory_order_seq_cst)) return;
  Scheduler* me = tls_current_;
  if (me && me != this && group_ && me->group_ == group_ && me->reactor_->ring(*reactor_)) return;
  reactor_->notify();
}

void Scheduler::drain_remote() {
  if (inbox_.woken.load(std::memory_order_relaxed)) {
    // Taken whole, newest first: reversed, the wakes run in the order they were posted.
    Fiber* f = inbox_.woken.exchange(nullptr, std::memory_order_acquire);
    Fiber* fifo = nullptr;
    std::uint64_t n = 0;
    while (f) {
      ++n;
      Fiber* next = st(f).remote_next;
      st(f).remote_next = fifo;
      fifo = f;
      f = next;
    }
    counters_.remote_received.add(n);
    while (fifo) {
      Fiber* next = st(fifo).remote_next;
      st(fifo).remote_next = nullptr;
      make_ready(fifo);
      fifo = next;
    }
  }
  if (!inbox_.pending.load(std::memory_order_relaxed)) return;
  // Clear the flag before taking the queue: a post after this point notifies again.
  inbox_.pending.store(false, std::memory_order_seq_cst);
  {
    // Swap with the drained (empty) buffers: both keep their capacity, so a burst of
    // wake-ups allocates nothing once the buffers have grown.
    std::lock_guard<SpinLock> lock(inbox_.mu);
    inbox_.tasks.swap(inbox_.tasks_drain);
    inbox_.spawns.swap(inbox_.spawns_drain);
    inbox_.calls.swap(inbox_.calls_drain);
  }
  for (Inbox::Spawn& r : inbox_.spawns_drain) {
    try {
      spawn(r.fiber, r.opts, /*counted=*/true);
    } catch (...) {  // no stack: the fiber ends at once with the error, which its handle gets
      abandon(r.fiber, std::current_exception());
    }
  }
  inbox_.spawns_drain.clear();
  for (auto& fn : inbox_.calls_drain) fn();
  inbox_.calls_drain.clear();
  for (auto& fn : inbox_.tasks_drain) spawn_task(std::move(fn));
  inbox_.tasks_drain.clear();
}

}  // namespace ringlet::detail
