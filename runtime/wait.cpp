#include "ringlet/detail/wait.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sched.h>

#include <cerrno>
#include <ctime>

#include "detail/scheduler.hpp"

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

void JoinersGuard::sched_yield_raw() noexcept { syscall(SYS_sched_yield); }

void SpinLock::wait_unlocked() noexcept {
  for (int i = 0; locked_.load(std::memory_order_relaxed); ++i) {
    if (i < 64) __builtin_ia32_pause();
    else syscall(SYS_sched_yield);  // the holder may have been preempted (not the patch's hook: never a fiber switch here)
  }
}

void Waiter::arm() noexcept {
  fiber = current_fiber();
  parker = fiber ? nullptr : &tls_parker;
  token = fiber ? fiber->epoch.load(std::memory_order_relaxed)
                : parker->epoch.load(std::memory_order_relaxed);
  granted = false;
}

bool Waiter::claim() noexcept {
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

std::size_t WaitList::grant_all() noexcept {
  std::size_t n = 0;
  while (grant_one()) ++n;
  return n;
}

bool block(WaitLock& lk, WaitList& list, Waiter& w, Deadline d,
           const char* what, bool interruptible) {
  if (w.fiber) {
    Scheduler& s = *w.fiber->sched;
    Fiber* f = w.fiber;
    const Deadline eff = interruptible ? earliest(d, f->deadline.deadline) : d;
    s.primitive_wait_begin();
    lk.unlock();
    // Uninterruptible parks are not woken by kill() or the deadlock breaker at all.
    const WakeReason r = s.park(w.token, eff, WaitInfo{what, nullptr}, interruptible);
    lk.lock();
    s.primitive_wait_end();
    list.remove(&w);
    if (w.granted) return true;  // only a claim() wakes with Notified, and it grants
    lk.unlock();                 // raise without holding the primitive's mutex
    s.settle(f, r, d);           // throws unless the explicit deadline passed
    lk.lock();
    return false;
  }
  // A plain thread: sleep on the futex until granted or the deadline; a timeout must win
  // the token itself, or a grant that raced it counts.
  DeadlineSlot& slot = thread_deadline_slot();
  const Deadline eff = interruptible ? earliest(d, slot.deadline) : d;
  ThreadParker& p = *w.parker;
  const auto token = static_cast<std::uint32_t>(w.token);
  lk.unlock();
  bool timed_out = false;
  for (;;) {
    if (p.epoch.load(std::memory_order_acquire) != token) break;  // granted
    if (eff.passed()) {
      std::uint32_t expected = token;
      if (p.epoch.compare_exchange_strong(expected, token + 1, std::memory_order_acq_rel)) {
        timed_out = true;
        break;
      }
      continue;  // a grant won just now
    }
    futex_wait(&p.epoch, token, eff);
  }
  lk.lock();
  list.remove(&w);
  if (!timed_out) return true;
  if (slot.deadline < d) {
    lk.unlock();
    throw Timeout::Expired(slot.owner, slot.deadline);
  }
  return false;
}

}  // namespace ringlet::detail
