// The fiber control block. Internal: included by the public headers because spawn() and
// Greenlet<T> are templates, but nothing here is part of the API.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "ringlet/detail/waiter.hpp"
#include "ringlet/time.hpp"

namespace ringlet {
class Timeout;
struct SpawnOptions;
}  // namespace ringlet

namespace ringlet::detail {

class Scheduler;
class Fiber;

// Why a parked fiber woke, as the scheduler records it (wait() turns it into a Woke). The
// first waker wins (see Fiber::epoch); the others do nothing. Interrupted: interrupt_waits()
// ended a wait that asked for it.
enum class WakeReason : std::uint8_t { None, Notified, TimedOut, Killed, Deadlock, Interrupted };

enum class FiberStatus : std::uint8_t { New, Ready, Running, Parked, Done };

// How a stack is protected against overflow (see StackPool).
enum class StackProtection : std::uint8_t { GuardMarker, GuardPage, Checked };

struct StackSpan {
  char* lo = nullptr;      // lowest usable byte; the guard (if any) is the page below
  std::size_t size = 0;    // usable bytes
  StackProtection protection = StackProtection::GuardMarker;
};

// The deadline that scoped Timeouts impose on a fiber (or a plain thread).
struct DeadlineSlot {
  Deadline deadline;
  const Timeout* owner = nullptr;
};

// What a parked fiber waits on, for the deadlock report.
struct WaitInfo {
  const char* what = nullptr;
  const Fiber* target = nullptr;
};

struct FlsTable;  // fiber-local storage, created on first use

class Fiber {
 public:
  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  virtual ~Fiber();

  // Runs the fiber's function and stores its value; exceptions propagate to the caller.
  virtual void invoke() = 0;
  // Destroys the stored callable (and the arguments it captured) once it has run.
  virtual void drop_callable() noexcept = 0;

  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  std::string display_name() const;  // "name" or "fiber-<id>"

  // --- switching (hot) ---
  void* ctx = nullptr;              // Boost.Context fcontext_t of the suspended fiber
  Fiber* next_ready = nullptr;      // intrusive run-queue hook
  Fiber* remote_next = nullptr;     // hook in a scheduler's stack of fibers woken remotely
  Scheduler* sched = nullptr;
  // Wake token. A waker that registered with token T wins only by moving the epoch from T
  // to T+1; every later waker with T fails. This settles completion/timeout/kill races.
  std::atomic<std::uint64_t> epoch{0};
  std::uint64_t park_token = 0;     // token of the current park, used by kill()
  WakeReason reason = WakeReason::None;
  FiberStatus status = FiberStatus::New;
  bool interruptible = false;       // parked in a wait that kill() may break
  bool interrupt_wait = false;      // in an InterruptScope: interrupt_waits() may end its waits
  bool kill_pending = false;        // GreenletExit to be raised at the next switch point
  bool kill_sent = false;
  bool daemon = false;
  std::atomic<bool> observed{false};  // someone looked at the outcome (get/exception)
  bool killed = false;              // ended by GreenletExit
  std::atomic<bool> reported{false};
  // Set (release) once the fiber has finished and its outcome is stored: what a handle on
  // another core reads. `status` belongs to the owning scheduler's thread.
  std::atomic<bool> finished{false};

  std::atomic<int> refs{1};         // one for the scheduler while alive, one per handle
  std::atomic<int> handles{0};      // Greenlet handles alive (copied across cores)
  std::uint64_t id = 0;
  StackSpan stack;
  DeadlineSlot deadline;            // from enclosing Timeout scopes
  WaitInfo waiting;
  void* eh_globals[2] = {nullptr, nullptr};  // per-fiber __cxa_eh_globals (caught exceptions)
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;       // ThreadSanitizer's fiber context (TSan builds)
  const void* asan_stack_bottom = nullptr;
  std::size_t asan_stack_size = 0;

  Fiber* all_prev = nullptr;        // scheduler's list of live fibers
  Fiber* all_next = nullptr;
  SpinLock join_lock;               // guards `joiners`, which fibers of any core link into
  WaitList joiners;                 // fibers waiting for this one to finish
  std::exception_ptr error;
  std::string name;
  FlsTable* fls = nullptr;
  int saved_errno = 0;              // errno is per fiber: swapped at every switch
};

template <class R>
class ResultFiber : public Fiber {
 public:
  std::optional<R> value;
};

template <>
class ResultFiber<void> : public Fiber {};

template <class R, class Fn>
class FiberImpl final : public ResultFiber<R> {
 public:
  explicit FiberImpl(Fn&& fn) : fn_(std::move(fn)) {}
  void invoke() override {
    if constexpr (std::is_void_v<R>) {
      (*fn_)();
    } else {
      this->value.emplace((*fn_)());
    }
  }
  void drop_callable() noexcept override { fn_.reset(); }

 private:
  std::optional<Fn> fn_;
};

// Entry points the templates need; defined in the library.
void spawn_fiber(Fiber* f, const SpawnOptions& opts);  // takes the scheduler's reference
Fiber* current_fiber() noexcept;                       // null on a plain thread
bool join_fiber(Fiber* f, Deadline d);                 // true once f is done
void kill_fiber(Fiber* f);                             // request GreenletExit in f
void handle_acquired(Fiber* f) noexcept;
void handle_released(Fiber* f) noexcept;
[[noreturn]] void rethrow_outcome(Fiber* f);           // f->error, marking it observed

}  // namespace ringlet::detail
