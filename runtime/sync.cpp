#include "ringlet/sync.hpp"

#include <stdexcept>

#include "internal/scheduler.hpp"

namespace ringlet {

using detail::Waiter;

using detail::check_switch_point;

// --- Lock ---

bool Lock::acquire_contended(Deadline d) {
  check_switch_point();
  return acquire_slow(d, true);
}

bool Lock::acquire_slow(Deadline d, bool interruptible) {
  detail::WaitLock lk(mu_);
  // Mark "waiters may exist" so release takes the slow path; if it was free, it is ours.
  if (state_.exchange(2, std::memory_order_acquire) == 0) {
    owner_.store(detail::self_identity(), std::memory_order_relaxed);
    return true;
  }
  Waiter w;
  w.arm();
  waiters_.push(&w);
  if (!detail::block(lk, waiters_, w, d, "Lock::acquire", interruptible)) return false;
  owner_.store(detail::self_identity(), std::memory_order_relaxed);  // handed over by release
  return true;
}

void Lock::not_owner() const {
  throw std::logic_error(locked() ? "ringlet::Lock::release: the lock is held by someone else"
                                  : "ringlet::Lock::release: the lock is not held");
}

void Lock::release_contended() {
  std::lock_guard lk(mu_);
  // Hand the lock straight to the longest waiter that can still take it (FIFO, no barging).
  if (waiters_.grant_one()) {
    if (waiters_.empty()) state_.store(1, std::memory_order_relaxed);
    return;
  }
  state_.store(0, std::memory_order_release);
}

// --- RLock ---

bool RLock::try_acquire() noexcept {
  const void* me = detail::self_identity();
  if (owner_.load(std::memory_order_relaxed) == me) {
    ++depth_;
    return true;
  }
  if (!lock_.try_acquire()) return false;
  owner_.store(me, std::memory_order_relaxed);
  depth_ = 1;
  return true;
}

bool RLock::acquire(Deadline d) {
  const void* me = detail::self_identity();
  if (owner_.load(std::memory_order_relaxed) == me) {
    ++depth_;
    return true;
  }
  if (!lock_.acquire(d)) return false;
  owner_.store(me, std::memory_order_relaxed);
  depth_ = 1;
  return true;
}

void RLock::release() {
  if (owner_.load(std::memory_order_relaxed) != detail::self_identity())
    throw std::logic_error("ringlet::RLock::release: the lock is not held by the caller");
  if (--depth_ > 0) return;
  owner_.store(nullptr, std::memory_order_relaxed);
  lock_.release();
}

// --- Semaphore ---

bool Semaphore::try_acquire() noexcept {
  std::lock_guard lk(mu_);
  if (count_ == 0 || !waiters_.empty()) return false;  // FIFO: no jumping the queue
  --count_;
  return true;
}

bool Semaphore::acquire(Deadline d) {
  detail::WaitLock lk(mu_);
  if (count_ > 0 && waiters_.empty()) {
    --count_;
    return true;
  }
  lk.unlock();
  check_switch_point();
  lk.lock();
  if (count_ > 0 && waiters_.empty()) {
    --count_;
    return true;
  }
  Waiter w;
  w.arm();
  waiters_.push(&w);
  return detail::block(lk, waiters_, w, d, "Semaphore::acquire");  // a grant is a permit
}

void Semaphore::release(std::size_t n) {
  std::lock_guard lk(mu_);
  release_locked(n);
}

void Semaphore::release_locked(std::size_t n) noexcept {
  for (; n > 0; --n)
    if (!waiters_.grant_one()) ++count_;  // a waiter takes the permit directly
}

std::size_t Semaphore::value() const noexcept {
  std::lock_guard lk(mu_);
  return count_;
}

void BoundedSemaphore::release(std::size_t n) {
  std::lock_guard lk(mu_);
  // Permits out = limit - count (waiters hold none yet): checked and released in one go.
  if (count_ + n > limit_)
    throw std::logic_error("ringlet::BoundedSemaphore::release: released more often than acquired");
  release_locked(n);
}

// --- Event ---

void Event::set() {
  std::lock_guard lk(mu_);
  flag_.store(true, std::memory_order_release);
  waiters_.grant_all();
}

bool Event::wait(Deadline d) {
  if (is_set()) return true;
  check_switch_point();
  detail::WaitLock lk(mu_);
  if (is_set()) return true;
  Waiter w;
  w.arm();
  waiters_.push(&w);
  return detail::block(lk, waiters_, w, d, "Event::wait");
}

// --- Condition ---

bool Condition::wait(Lock& lock, Deadline d) {
  if (lock.owner_.load(std::memory_order_relaxed) != detail::self_identity())
    throw std::logic_error("ringlet::Condition::wait: the caller must hold the lock");
  check_switch_point();
  detail::WaitLock lk(mu_);
  Waiter w;
  w.arm();
  waiters_.push(&w);  // registered before the lock goes: no notify can slip between
  lock.release();
  // Hold the lock again however the wait ends, and only after letting go of our own mutex
  // (a notifier may hold the lock while it takes ours). A kill or timeout arriving during
  // the re-acquire stays pending until the lock is back.
  auto reacquire = [&lock] {
    if (!lock.try_acquire()) lock.acquire_slow(Deadline::never(), false);
  };
  bool notified;
  try {
    notified = detail::block(lk, waiters_, w, d, "Condition::wait");
  } catch (...) {
    if (lk.owns_lock()) lk.unlock();
    reacquire();
    throw;
  }
  lk.unlock();
  reacquire();
  return notified;
}

std::size_t Condition::notify(std::size_t n) {
  std::lock_guard lk(mu_);
  std::size_t woke = 0;
  while (woke < n && waiters_.grant_one()) ++woke;
  return woke;
}

std::size_t Condition::notify_all() {
  std::lock_guard lk(mu_);
  return waiters_.grant_all();
}

}  // namespace ringlet
