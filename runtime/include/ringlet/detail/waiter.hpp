// What every wait is made of: the spin lock under a waiter list, a waiter (a fiber or a plain
// thread, with the wake token it armed) and the FIFO list of them. Waiter nodes live on the
// waiters' own stacks. Internal: installed because the primitives (Queue,
// AsyncResult, ...) are templates that embed WaitLists.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace ringlet::detail {

class Fiber;

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
  // Grant up to n waiters whose `slot` is `slot`, front first; returns how many.
  std::size_t grant_slot(const void* slot, std::size_t n) noexcept;

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
};

}  // namespace ringlet::detail
