// Synchronisation primitives with Python's semantics: Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition.
//
// They work for fibers (the waiting fiber parks; its scheduler runs others), for plain
// threads (the thread sleeps on a futex), and across schedulers on different threads.
// Waiters are served in FIFO order. Every wait is a switch point: kill() raises GreenletExit
// and an enclosing Timeout raises Timeout::Expired; an explicit deadline that passes is a
// `false` return. A waiter that times out at the moment it is notified never loses the
// notification nor takes it twice: the notifier hands over only if it wins the waiter's
// wake race, and otherwise moves on to the next waiter.
//
// Locks are Lockable, so std::lock_guard, std::unique_lock and std::scoped_lock work:
//
//   ringlet::Lock lock;
//   { std::lock_guard guard(lock); balance -= 80; }
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "ringlet/detail/wait.hpp"
#include "ringlet/time.hpp"

namespace ringlet {

// A non-recursive lock. Releasing a lock the caller does not hold throws std::logic_error.
class Lock {
 public:
  Lock() = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  // Wait for the lock; false if the deadline passed first.
  bool acquire(Deadline d = Deadline::never()) { return try_acquire() || acquire_contended(d); }
  bool try_acquire() noexcept {
    std::uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      return false;
    owner_.store(detail::self_identity(), std::memory_order_relaxed);
    return true;
  }
  void release() {
    if (owner_.load(std::memory_order_relaxed) != detail::self_identity()) not_owner();
    owner_.store(nullptr, std::memory_order_relaxed);
    std::uint32_t expected = 1;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed))
      release_contended();
  }
  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != 0; }

  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

 private:
  friend class Condition;
  bool acquire_contended(Deadline d);
  bool acquire_slow(Deadline d, bool interruptible);
  void release_contended();
  [[noreturn]] void not_owner() const;

  // 0: free; 1: held, nobody waits; 2: held, waiters may exist (release takes the slow path)
  std::atomic<std::uint32_t> state_{0};
  std::atomic<const void*> owner_{nullptr};
  detail::SpinLock mu_;
  detail::WaitList waiters_;
};

// A lock its holder may acquire again; each acquire needs a release.
class RLock {
 public:
  RLock() = default;
  RLock(const RLock&) = delete;
  RLock& operator=(const RLock&) = delete;

  bool acquire(Deadline d = Deadline::never());
  bool try_acquire() noexcept;
  void release();
  bool locked() const noexcept { return lock_.locked(); }

  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

 private:
  Lock lock_;
  std::atomic<const void*> owner_{nullptr};
  std::size_t depth_ = 0;
};

// A counter of permits. acquire() takes one, waiting while there are none; release() gives
// one back (to the longest waiter first).
class Semaphore {
 public:
  explicit Semaphore(std::size_t permits = 1) : count_(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  bool acquire(Deadline d = Deadline::never());
  bool try_acquire() noexcept;
  void release(std::size_t n = 1);
  std::size_t value() const noexcept;

  void lock() { acquire(); }
  bool try_lock() noexcept { return try_acquire(); }
  void unlock() { release(); }

 protected:
  void release_locked(std::size_t n) noexcept;
  mutable detail::SpinLock mu_;
  std::size_t count_;
  detail::WaitList waiters_;
};

// A Semaphore that may not be released beyond its initial count (std::logic_error).
class BoundedSemaphore : public Semaphore {
 public:
  explicit BoundedSemaphore(std::size_t permits = 1) : Semaphore(permits), limit_(permits) {}
  void release(std::size_t n = 1);
  void unlock() { release(); }

 private:
  std::size_t limit_;
};

// A flag fibers can wait for. set() wakes every waiter; later waits return at once until
// clear().
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void set();
  void clear() noexcept { flag_.store(false, std::memory_order_release); }
  bool is_set() const noexcept { return flag_.load(std::memory_order_acquire); }
  // True once set; false if the deadline passed first.
  bool wait(Deadline d = Deadline::never());

 private:
  std::atomic<bool> flag_{false};
  detail::SpinLock mu_;
  detail::WaitList waiters_;
};

// A condition variable over a ringlet::Lock. wait() releases the lock while it waits and
// holds it again when it returns, also when it returns by a timeout or an exception.
class Condition {
 public:
  Condition() = default;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // Wait for a notify; false if the deadline passed first. The caller must hold `lock`.
  bool wait(Lock& lock, Deadline d = Deadline::never());
  bool wait(std::unique_lock<Lock>& lock, Deadline d = Deadline::never()) {
    return wait(*lock.mutex(), d);
  }
  // Wait until pred() holds; returns pred() (false only if the deadline passed first).
  template <class Pred>
    requires std::predicate<Pred&>
  bool wait(Lock& lock, Pred pred, Deadline d = Deadline::never()) {
    while (!pred())
      if (!wait(lock, d)) return pred();
    return true;
  }
  template <class Pred>
    requires std::predicate<Pred&>
  bool wait(std::unique_lock<Lock>& lock, Pred pred, Deadline d = Deadline::never()) {
    return wait(*lock.mutex(), std::move(pred), d);
  }

  // Wake up to n waiters (the longest-waiting first); returns how many woke.
  std::size_t notify(std::size_t n = 1);
  std::size_t notify_all();

 private:
  detail::SpinLock mu_;
  detail::WaitList waiters_;
};

}  // namespace ringlet
