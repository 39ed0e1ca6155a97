// What the runtime keeps in every fiber besides what the installed header shows: the
// scheduling state (switch context, run-queue hooks, wake token, status, kill and interrupt
// flags, stack, scoped deadline, joiners, sanitizer contexts, errno, fiber-local storage,
// run time).
// Private to the runtime (and to ringlet's own tests and benchmarks).
//
// It lives inside the fiber's single allocation: ringlet/detail/fiber.hpp reserves
// Fiber::kStateSize suitably aligned bytes for it, which Fiber's out-of-line constructor and
// destructor (runtime/fiber.cpp) construct and destroy. st(f) is a constant offset from f, so
// reaching the state costs what reaching a member did. The static_asserts below turn a layout
// change that no longer fits (or leaves slack) into a compile error.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/detail/waiter.hpp"
#include "ringlet/time.hpp"

namespace ringlet::detail {

class Scheduler;

// Why a parked fiber woke, as the scheduler records it (wait() turns it into a Woke). The
// first waker wins (see FiberState::epoch); the others do nothing. Interrupted:
// interrupt_waits() ended a wait that asked for it.
enum class WakeReason : std::uint8_t { None, Notified, TimedOut, Killed, Deadlock, Interrupted };

// Gone: left behind in a forked child (Scheduler::forget_other_fibers); never runs again.
enum class FiberStatus : std::uint8_t { New, Ready, Running, Parked, Done, Gone };

// How a stack is protected against overflow (see StackPool).
enum class StackProtection : std::uint8_t { GuardMarker, GuardPage, Checked };

struct StackSpan {
  char* lo = nullptr;      // lowest usable byte; the guard (if any) is the page below
  std::size_t size = 0;    // usable bytes
  StackProtection protection = StackProtection::GuardMarker;
};

// The deadline that scoped Timeouts impose on a fiber (or a plain thread). Timeout keeps a
// pointer to one as an opaque void*.
struct DeadlineSlot {
  Deadline deadline;
  const Timeout* owner = nullptr;
};

// What a parked fiber waits on, for the deadlock report and the fiber dump. It lives in
// Scheduler::park's frame, on the parked fiber's own stack, for as long as the park lasts;
// the fiber's state only points at it (FiberState::waiting), which keeps every fiber 32
// bytes smaller than holding it there did.
struct WaitInfo {
  const char* what = nullptr;
  const Fiber* target = nullptr;
  Deadline deadline;   // when the wait ends by itself (never: only a waker ends it)
  int fd = -1;         // the descriptor an I/O wait is for, else -1
  // When the park began (CLOCK_MONOTONIC_COARSE, ns), set by park.
  std::int64_t since_ns = 0;
};

struct FlsTable;  // fiber-local storage, created on first use

struct FiberState {
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
  // The owning scheduler's thread's view; other threads read Fiber::finished.
  FiberStatus status = FiberStatus::New;
  bool interruptible = false;       // parked in a wait that kill() may break
  bool interrupt_wait = false;      // in an InterruptScope: interrupt_waits() may end its waits
  bool kill_pending = false;        // GreenletExit to be raised at the next switch point
  bool kill_woke = false;           // a wait ended Woke::Killed since take_kill_wake()
  bool started = false;             // has run (its context is no longer the one spawn made)
  // The fiber's one operation in an engine that completes for it (io_uring): the reactor
  // stores the result here, in the line its wake touches anyway, not in a frame on the
  // parked fiber's cold stack (a fiber has at most one such operation in flight).
  bool io_done = false;
  int saved_errno = 0;              // errno is per fiber: swapped at every switch
  // The epoll engine's word from its wake instead: 1 an event, -ECANCELED a close (FdWait).
  std::int32_t io_res = 0;

  StackSpan stack;
  bool kill_sent = false;
  bool daemon = false;
  bool killed = false;              // ended by GreenletExit
  std::atomic<bool> reported{false};
  SpinLock join_lock;               // guards `joiners`, which fibers of any core link into
  DeadlineSlot deadline;            // from enclosing Timeout scopes
  const WaitInfo* waiting = nullptr;  // while parked: what on (in park's frame), else null
  void* eh_globals[2] = {nullptr, nullptr};  // per-fiber __cxa_eh_globals (caught exceptions)
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;       // ThreadSanitizer's fiber context (TSan builds)
  const void* asan_stack_bottom = nullptr;
  std::size_t asan_stack_size = 0;

  Fiber* all_prev = nullptr;        // scheduler's list of live fibers
  Fiber* all_next = nullptr;
  // For the fiber dump: where spawn was called from (a return address).
  const void* spawned_from = nullptr;
  WaitList joiners;                 // fibers waiting for this one to finish
  FlsTable* fls = nullptr;
  void* tp = nullptr;               // its own TLS block's thread pointer; null: its OS thread's
  // Run time so far in ns, while its scheduler accounts CPU time (Scheduler::
  // enable_cpu_accounting); written by that scheduler's thread only, at switches.
  std::atomic<std::uint64_t> cpu_ns{0};
};

static_assert(offsetof(FiberState, io_res) + sizeof(std::int32_t) <= 64,
              "saved_errno (read at every switch) or the I/O result (written by the wake) "
              "left the first cache line");
static_assert(sizeof(FiberState) <= Fiber::kStateSize,
              "FiberState outgrew Fiber::kStateSize: raise it in ringlet/detail/fiber.hpp");
static_assert(Fiber::kStateSize - sizeof(FiberState) < alignof(FiberState),
              "Fiber::kStateSize leaves slack: lower it in ringlet/detail/fiber.hpp");
static_assert(alignof(FiberState) <= Fiber::kStateAlign,
              "FiberState needs more alignment than Fiber::kStateAlign");
static_assert(std::is_nothrow_default_constructible_v<FiberState>);

// No std::launder: GCC treats its result as a fresh pointer, which kept it from folding the
// state's offset into each access and tipped switch_to out of yield's inlining (+40 % on
// bench_switch). The FiberState placed in state_ is the only object ever created there and
// has no const or reference members, so the plain cast reaches it.
struct FiberStateAccess {
  static FiberState& of(Fiber* f) noexcept { return *reinterpret_cast<FiberState*>(f->state_); }
  static const FiberState& of(const Fiber* f) noexcept {
    return *reinterpret_cast<const FiberState*>(f->state_);
  }
};

// The runtime's part of fiber f.
inline FiberState& st(Fiber* f) noexcept { return FiberStateAccess::of(f); }
inline const FiberState& st(const Fiber* f) noexcept { return FiberStateAccess::of(f); }

// While it lives, the running fiber's interruptible waits (its own, and those a reactor
// makes for it) may be ended by interrupt_waits() (ringlet/detail/wait.hpp). Nothing on a
// plain thread.
class InterruptScope {
 public:
  InterruptScope() noexcept : f_(current_fiber()) {
    if (f_) saved_ = std::exchange(st(f_).interrupt_wait, true);
  }
  ~InterruptScope() {
    if (f_) st(f_).interrupt_wait = saved_;
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  Fiber* f_;
  bool saved_ = false;
};

}  // namespace ringlet::detail
