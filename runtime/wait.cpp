#include "ringlet/detail/wait.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>

#include <cerrno>
#include <ctime>

#include "internal/fiber_wait.hpp"
#include "internal/hot.hpp"
#include "internal/scheduler.hpp"
#include "ringlet/fiber.hpp"

namespace ringlet::detail {

namespace {

thread_local ThreadParker tls_parker;

void futex_wake(std::atomic<std::uint32_t>* word) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

// Sleep while *word == expected, until the absolute monotonic deadline (or forever).
void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline d) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (!d.is_never()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time().time_since_epoch()).count();
    ts = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected,
          tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
}

}  // namespace

ThreadParker& this_thread_parker() noexcept { return tls_parker; }

void check_switch_point() {
  Scheduler* s = Scheduler::current();
  if (Fiber* f = s ? s->running() : nullptr) s->check_interrupts(f);
}

std::shared_ptr<SchedulerLink> current_link() {
  Scheduler* s = Scheduler::current();
  return s && s->running() ? s->link() : nullptr;
}

bool call_soon(const std::shared_ptr<SchedulerLink>& link, std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(link->mu);
  if (!link->sched) return false;
  Scheduler* s = link->sched;
  if (Scheduler::current() == s) s->spawn_task(std::move(fn));
  else s->post_task(std::move(fn));
  return true;
}

__thread const void* tls_identity = nullptr;

const void* thread_identity() noexcept { return &tls_parker; }

void SpinLock::wait_unlocked() noexcept {
  for (int i = 0; locked_.load(std::memory_order_relaxed); ++i) {
    if (i < 64) __builtin_ia32_pause();
    else syscall(SYS_sched_yield);  // the holder may have been preempted (the raw syscall: never a fiber switch here)
  }
}

RINGLET_HOT void Waiter::arm() noexcept {
  fiber = current_fiber();
  parker = fiber ? nullptr : &tls_parker;
  token = fiber ? st(fiber).epoch.load(std::memory_order_relaxed)
                : parker->epoch.load(std::memory_order_relaxed);
  granted = false;
}

RINGLET_HOT bool Waiter::claim() noexcept {
  if (fiber) return Scheduler::wake(fiber, token, WakeReason::Notified);
  auto expected = static_cast<std::uint32_t>(token);
  if (!parker->epoch.compare_exchange_strong(expected, expected + 1, std::memory_order_acq_rel))
    return false;
  futex_wake(&parker->epoch);
  return true;
}

void WaitList::push(Waiter* w) noexcept {
  w->next = nullptr;
  w->prev = tail_;
  if (tail_) tail_->next = w;
  else head_ = w;
  tail_ = w;
  w->linked = true;
}

void WaitList::remove(Waiter* w) noexcept {
  if (!w->linked) return;
  if (w->prev) w->prev->next = w->next;
  else head_ = w->next;
  if (w->next) w->next->prev = w->prev;
  else tail_ = w->prev;
  w->next = w->prev = nullptr;
  w->linked = false;
}

Waiter* WaitList::grant_one() noexcept {
  while (Waiter* w = head_) {
    remove(w);
    if (w->claim()) {
      w->granted = true;
      return w;
    }
  }
  return nullptr;
}

std::size_t WaitList::grant_slot(const void* slot, std::size_t n) noexcept {
  std::size_t granted = 0;
  for (Waiter* w = head_; w && granted < n;) {
    Waiter* next = w->next;
    if (w->slot == slot) {
      remove(w);
      if (w->claim()) {
        w->granted = true;
        ++granted;
      }
    }
    w = next;
  }
  return granted;
}

std::size_t WaitList::grant_all() noexcept {
  std::size_t n = 0;
  while (grant_one()) ++n;
  return n;
}

namespace {

// A plain thread sleeps on its futex until granted or the deadline; a timeout must win the
// token itself, or a grant that raced it counts.
Woke thread_wait(ThreadParker& p, std::uint64_t token64, const WaitSpec& spec) noexcept {
  const DeadlineSlot& slot = thread_deadline_slot();
  const Deadline scoped = spec.interruptible ? slot.deadline : Deadline::never();
  const Deadline eff = earliest(spec.deadline, scoped);
  const auto token = static_cast<std::uint32_t>(token64);
  for (;;) {
    if (p.epoch.load(std::memory_order_acquire) != token) return Woke::Notified;
    if (eff.passed()) {
      std::uint32_t expected = token;
      if (p.epoch.compare_exchange_strong(expected, token + 1, std::memory_order_acq_rel))
        return timed_out(spec.deadline, scoped);
      continue;  // a grant won just now
    }
    futex_wait(&p.epoch, token, eff);
  }
}

}  // namespace

RINGLET_HOT Woke wait(Waiter& w, const WaitSpec& spec) noexcept {
  if (w.fiber) return fiber_wait(w.fiber, w.token, spec);
  return thread_wait(*w.parker, w.token, spec);
}

bool settle(Woke w) {
  switch (w) {
    case Woke::Notified:
    case Woke::Interrupted:
      return false;
    case Woke::Deadline:
      return true;
    case Woke::Scoped: {
      Fiber* f = current_fiber();
      const DeadlineSlot& slot = f ? st(f).deadline : thread_deadline_slot();
      throw Timeout::Expired(slot.owner, slot.deadline);
    }
    case Woke::Killed:
      if (Fiber* f = current_fiber()) st(f).kill_pending = false;
      throw GreenletExit{};
    case Woke::Deadlock:
      throw DeadlockError(Scheduler::current()->deadlock_report());
  }
  return false;
}

bool take_kill_wake() noexcept {
  Fiber* f = current_fiber();
  if (!f) return false;
  const bool woke = st(f).kill_woke;
  st(f).kill_woke = false;
  return woke;
}

void drop_kill() noexcept {
  if (Fiber* f = current_fiber()) st(f).kill_pending = false;
}

void interrupt_waits() noexcept {
  if (Scheduler* s = Scheduler::current()) s->interrupt_waits_from_signal();
}

void fair_point() noexcept {
  if (Scheduler* s = Scheduler::current()) s->fair_point();
}

void interrupt_waits_on(unsigned core) noexcept {
  Scheduler* s = Scheduler::current();
  if (!s) return;
  CoreGroup* g = s->group();
  if (!g) {
    if (core == 0) s->interrupt_waits_from_signal();
    return;
  }
  if (core < g->scheds.size() && g->scheds[core]) g->scheds[core]->interrupt_waits_from_signal();
}

void interrupt_waits_everywhere() noexcept {
  Scheduler* s = Scheduler::current();
  if (!s) return;
  if (CoreGroup* g = s->group()) {
    for (Scheduler* t : g->scheds)
      if (t) t->interrupt_waits_from_signal();
  } else {
    s->interrupt_waits_from_signal();
  }
}

bool block(WaitLock& lk, WaitList& list, Waiter& w, Deadline d,
           const char* what, bool interruptible) {
  WaitSpec spec;
  spec.what = what;
  spec.kind = WaitKind::Primitive;
  spec.deadline = d;
  spec.interruptible = interruptible;
  spec.any_thread = true;
  lk.unlock();
  const Woke r = w.fiber ? fiber_wait(w.fiber, w.token, spec) : thread_wait(*w.parker, w.token, spec);
  lk.lock();
  list.remove(&w);
  if (w.granted) return true;  // only a claim() ends a wait as granted
  lk.unlock();                 // raise without holding the primitive's lock
  settle(r);                   // throws unless the explicit deadline passed
  lk.lock();
  return false;
}

}  // namespace ringlet::detail
