// The waiting core under every synchronisation primitive: a FIFO of waiter nodes that live
// on the waiters' own stacks, guarded by the primitive's mutex, woken through the same token
// race as everything else (first waker wins). A waiter is a fiber (parked in its scheduler)
// or a plain thread (parked on a futex). Internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "ringlet/detail/fiber.hpp"

namespace ringlet::detail {

// The lock under each primitive's waiter list. Held only for a few instructions, never
// across a park: an uncontended lock/unlock is one exchange and one store.
class SpinLock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) wait_unlocked();
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  void wait_unlocked() noexcept;  // pause-spin, then yield the CPU
  std::atomic<bool> locked_{false};
};
using WaitLock = std::unique_lock<SpinLock>;

// Who is running on this thread: the current fiber, or null on the scheduler loop and on
// plain threads. Kept by the scheduler at every switch.
extern __thread const void* tls_identity __attribute__((tls_model("initial-exec")));
const void* thread_identity() noexcept;  // the plain thread's identity

// An identity for "who holds this lock": the running fiber, else the calling thread.
inline const void* self_identity() noexcept {
  const void* id = tls_identity;
  return id ? id : thread_identity();
}

// A plain thread's parking spot (one per thread).
struct ThreadParker {
  std::atomic<std::uint32_t> epoch{0};
};
ThreadParker& this_thread_parker() noexcept;

struct Waiter {
  Fiber* fiber = nullptr;          // the waiting fiber, or
  ThreadParker* parker = nullptr;  // the waiting plain thread
  std::uint64_t token = 0;
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  bool linked = false;
  bool granted = false;   // a notifier won the race and handed over what was waited for
  void* slot = nullptr;   // what is handed over (Queue: where the item goes or comes from)

  // Prepare for the calling context (fiber or plain thread): capture its current token.
  void arm() noexcept;
  // Claim this waiter: true if the caller won the wake race (the waiter will see Notified).
  // Call with the list's mutex held; on success set `granted` and hand over before unlocking.
  bool claim() noexcept;
};

class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(Waiter* w) noexcept;
  void remove(Waiter* w) noexcept;
  // FIFO: unlink waiters from the front until one is claimed; return it (granted) or null.
  // Waiters that lost the race (timed out, killed) are unlinked and skipped.
  Waiter* grant_one() noexcept;
  // Claim and unlink every waiter; returns how many were granted.
  std::size_t grant_all() noexcept;

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

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
