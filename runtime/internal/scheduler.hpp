// The scheduler: one per OS thread, found through a thread-local pointer. It owns the run
// queue, the timers, the stacks and the reactor; Scheduler::loop() is the whole runtime in
// one function.
#pragma once

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/detail/wait.hpp"
#include "ringlet/run.hpp"
#include "internal/counters.hpp"
#include "internal/cpu_clock.hpp"
#include "internal/fiber_state.hpp"
#include "internal/inbox.hpp"
#include "internal/reactor.hpp"
#include "internal/stack_pool.hpp"
#include "internal/timer_heap.hpp"

namespace ringlet::detail {

// The thread's native stack, on which the loop runs, as a pseudo-fiber so that every switch
// has the same shape.
// Shared internals (defined in fiber.cpp / fls.cpp).
void report_unobserved(Fiber* f);  // on stderr, once, if f's exception was never observed
void destroy_fls(Fiber* f) noexcept;
DeadlineSlot& thread_deadline_slot() noexcept;  // scoped Timeouts of a plain thread

// Threads ringlet starts that never notify a user's primitive (the DNS resolver's): they do
// not make a parked fiber's wait possibly-not-a-deadlock.
extern std::atomic<long> quiet_threads;

// The blocking monitor (monitor.cpp): a thread that reports any fiber holding its
// scheduler longer than a threshold without switching, with its name and a backtrace.
void monitor_register(Scheduler* s, long threshold_ms);
void monitor_unregister(Scheduler* s) noexcept;
// Around an exec by the calling thread (the patch's exec hooks): before it, the monitor stops
// signalling this thread's scheduler and takes off a signal of its own still pending here
// (the kernel keeps a thread's pending signals across execve, and the new image's default
// action would end the process); after an exec that failed, it watches it again. Nothing
// where the thread runs no scheduler or the monitor is off.
void monitor_before_exec() noexcept;
void monitor_after_failed_exec() noexcept;
// The threshold in force: RunOptions::max_blocking_ms if set, else RINGLET_MAX_BLOCKING_MS,
// else 0 (off).
long monitor_threshold(long from_options);

// The schedulers of one run with RunOptions::threads > 1, one per core. The counts cover
// every core, fibers on their way to another core included: the run ends when no
// non-daemon fiber is left anywhere (then daemons are killed everywhere) and no fiber at all.
struct CoreGroup {
  std::vector<Scheduler*> scheds;     // index = core; complete before main starts
  std::atomic<long> live{0};
  std::atomic<long> live_nondaemon{0};
  std::mutex error_mu;
  std::exception_ptr error;           // the first failure of a core other than 0
  void broadcast() noexcept;          // wake every loop to look at the counts again
  // The run-wide deadlock check (deadlock.cpp): one core at a time looks at every core;
  // with RunOptions::deadlock_waits, the switches of every core when a deadlock was said.
  SpinLock deadlock_mu;
  std::uint64_t deadlock_said_at = ~std::uint64_t{0};
};

// In a forked child: the registry of schedulers keeps the caller's only (scheduler.cpp).
void forget_other_schedulers() noexcept;

// When a park began, for the fiber dump: the coarse clock (a few ns through the vDSO; its
// resolution, a tick, is plenty for "parked for 3.2 s").
inline std::int64_t coarse_now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

class NativeContext final : public Fiber {
 public:
  void invoke() override {}
  void drop_callable() noexcept override {}
};

class Scheduler {
 public:
  explicit Scheduler(const RunOptions& opts);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  static Scheduler* current() noexcept { return tls_current_; }
  // The running fiber, or null while the loop itself runs.
  Fiber* running() const noexcept { return running_ == &native_ ? nullptr : running_; }

  // Start f here. `counted`: the group's counts already include it (spawn_on did that).
  void spawn(Fiber* f, const SpawnOptions& opts, bool counted = false);
  void run_main(Fiber* main);
  // A scheduler of a group other than core 0's: loop until the group has no fiber left.
  void run_worker();
  void join_group(CoreGroup* g, unsigned core) noexcept {
    group_ = g;
    core_ = core;
  }
  CoreGroup* group() const noexcept { return group_; }
  unsigned core() const noexcept { return core_; }

  // --- parking ---
  // A switch point: throw GreenletExit if a kill is pending, Timeout::Expired if the
  // fiber's scoped deadline has passed.
  void check_interrupts(Fiber* f) {
    if (st(f).kill_pending || !st(f).deadline.deadline.is_never()) raise_interrupts(f);
  }
  // Park the running fiber until a waker holding `token` wakes it, or the deadline (a
  // timer) passes. Wakers registered with `token` before the call. `interruptible` lets
  // kill() and the deadlock breaker wake it.
  WakeReason park(std::uint64_t token, Deadline d, WaitInfo info, bool interruptible = true);
  // ringlet::yield(): let the other ready fibers run once, then the switch-point checks.
  // Hidden: ringlet::yield (time.cpp) calls it directly, not through the PLT; nothing
  // outside the library calls it.
  __attribute__((visibility("hidden"))) void yield();
  // Let the other ready fibers run once; no switch-point checks (for C callers).
  void yield_nothrow() noexcept;

  // Wake f if `token` is still its current token (same thread or another thread).
  static bool wake(Fiber* f, std::uint64_t token, WakeReason r) noexcept;
  void kill(Fiber* f);
  // From a signal handler on this thread (async-signal-safe): at the top of the next pass,
  // wake every fiber parked in a wait that asked for WaitSpec::interrupt (Interrupted).
  void interrupt_waits_from_signal() noexcept {
    interrupt_requested_.store(true, std::memory_order_relaxed);
    notify_from_signal();
  }
  const std::string& deadlock_report() const noexcept { return deadlock_report_; }
  // Wake the loop from a signal handler on this thread (async-signal-safe).
  void notify_from_signal() noexcept {
    if (Reactor* r = reactor_.get()) r->notify();
  }
  // In a forked child (pthread_atfork): a new engine; the parent's ring is not ours.
  // Fibers that were waiting on the old engine stay parked. A core of a multi-core run
  // becomes the only core of a single-core run (leave_group_after_fork): group() is null,
  // core() 0; the thread that runs its loop (run() on core 0, a core thread otherwise) does
  // not wait for the other cores' loops (RunHost).
  void after_fork_child() noexcept;
  // In a forked child, for a caller that wants POSIX threads' rule (the patch): every fiber
  // but the running one is gone, as every thread but fork's caller is. They never run or
  // wake again (kills included) and no longer count; their stacks stay as they are. What
  // other threads posted here and the loop has not taken yet (wakes, spawns, tasks, calls)
  // is dropped likewise. (A multi-core run is single-core in the child already.)
  void forget_other_fibers() noexcept;

  // A fiber here waits for a wake from another thread (a cross-thread primitive, a thread
  // pool job): while the count is non-zero, "nothing can wake them" is not a deadlock.
  // Any thread may call these.
  void expect_remote_wake() noexcept { remote_expected_.fetch_add(1, std::memory_order_relaxed); }
  void remote_wake_done() noexcept { remote_expected_.fetch_sub(1, std::memory_order_relaxed); }
  // A fiber here is parked on a synchronisation primitive, which any thread may notify: as
  // long as the process has other threads, its wait is not a proven deadlock.
  void primitive_wait_begin() noexcept { ++primitive_waits_; }
  void primitive_wait_end() noexcept { --primitive_waits_; }
  void signal_wait_begin() noexcept { ++signal_waits_; }
  void signal_wait_end() noexcept { --signal_waits_; }

  // Run fn in a new fiber here; any thread may call it.
  void post_task(std::function<void()> fn);
  // Spawn f here (counted in the group already); any thread may call it.
  void post_spawn(Fiber* f, const SpawnOptions& opts);
  // Run fn on this scheduler's loop, outside any fiber (it must not block); any thread.
  void post_call(std::function<void()> fn);
  // The same, from this scheduler's own thread: spawned at once.
  void spawn_task(std::function<void()> fn);
  const std::shared_ptr<SchedulerLink>& link() const noexcept { return link_; }

  Reactor& reactor() noexcept { return *reactor_; }
  StackPool& stacks() noexcept { return stacks_; }

  // Checks for tests: no fiber alive, nothing in flight.
  std::size_t live_fibers() const noexcept { return live_; }
  std::size_t timers_pending() const noexcept { return timers_.size(); }

  // The counters of ringlet::stats(): written by this scheduler's thread only (OwnedCounter),
  // read by any. Switches are switches_ below; stack memory is the StackPool's.
  struct Counters {
    // (Fibers alive, alive at most and spawned: alive_count(), peak_count(), spawned_count().)
    OwnedCounter parks[kWaitKinds];  // by WaitKind
    OwnedCounter io_submitted, io_completed;
    OwnedCounter timers_armed, timers_fired;
    OwnedCounter remote_sent, remote_received;
    // The idle loop: sleeps in the reactor, spins for other cores' posts before sleeping
    // (spin_for_remote), those that found one, and the time spun (ns).
    OwnedCounter sleeps, idle_spins, idle_spins_found, idle_spin_ns;
  };
  Counters& counters() noexcept { return counters_; }
  // Any thread (relaxed; the owner writes live_ and next_id_ with relaxed stores): fibers
  // alive here, fibers spawned here so far. No counter of their own: spawn and a fiber's end
  // pay nothing for them (a store more per spawn cost bench_spawn measurably).
  std::size_t alive_count() const noexcept { return __atomic_load_n(&live_, __ATOMIC_RELAXED); }
  std::uint64_t spawned_count() const noexcept { return __atomic_load_n(&next_id_, __ATOMIC_RELAXED) - 1; }
  // The most fibers alive here at once (spawn keeps it next to live_: no other cache line).
  std::size_t peak_count() const noexcept { return __atomic_load_n(&peak_, __ATOMIC_RELAXED); }
  const Counters& counters() const noexcept { return counters_; }

  // For the monitor thread: switches so far, and whether the loop sleeps in the reactor.
  std::uint64_t switch_count() const noexcept { return switches_.load(std::memory_order_relaxed); }
  bool idle() const noexcept { return idle_.load(std::memory_order_relaxed); }
  bool monitored() const noexcept { return monitor_ms_ > 0; }  // the blocking monitor watches it

  // The OS thread's own thread pointer; the running fiber adopting a TLS block of its own
  // (tp) or going back to the OS thread's (null). See internal/thread_pointer.hpp.
  void* home_tp() const noexcept { return home_tp_; }
  void adopt_tp(void* tp) noexcept;

  // --- per-fiber run time (off unless turned on) ---
  // From now on, charge each fiber here with the time it runs, at every switch (the patch
  // turns it on to give each fiber thread a CPU clock of its own). What the OS thread ran
  // before goes to the fiber running now; the loop's own time (the native context) goes to
  // no fiber. Intervals shorter than kCpuCheckNs are charged as the cheap clock measures
  // them (cpu_clock.hpp); a longer one as the OS thread's CPU time grew over it, so time
  // the thread was preempted or blocked in a system call the runtime does not see is not
  // charged (less what the short intervals since the last check were charged: their own
  // preemptions and blocking show up there). Idempotent; on this scheduler's thread.
  void enable_cpu_accounting() noexcept;
  bool cpu_accounting() const noexcept { return cpu_on_; }
  static constexpr std::uint64_t kCpuCheckNs = 50'000;
  // f's run time so far, in ns: up to now if f runs (the running fiber's current interval
  // included: measured on the caller's OS thread, or its wall time so far when f runs on
  // another core), else up to its last switch out. 0 if its scheduler does not account.
  static std::uint64_t cpu_time_ns(const Fiber* f) noexcept;

  // --- fairness between fibers that do not park ---
  // A fiber is never preempted. A caller that has just completed an operation without
  // parking (the patch's read that found data) calls this: once the running fiber has gone
  // kFairSliceNs without a switch, it goes to the back of the line, behind the fibers ready
  // now and those the next poll of the reactor wakes (yield() alone would put it before the
  // latter). On this scheduler's thread, on a fiber. The first call after a switch costs a
  // load and a store; the clock is read from the second on.
  void fair_point() noexcept {
    const std::uint64_t sw = switches_.load(std::memory_order_relaxed);
    if (sw != fair_switches_) {
      fair_switches_ = sw;
      fair_since_ = 0;
      return;
    }
    fair_point_again();
  }
  static constexpr std::uint64_t kFairSliceNs = 100'000;
  std::uint64_t fair_yields() const noexcept { return fair_yields_.load(std::memory_order_relaxed); }

  // Used by the SIGSEGV handler (async-signal context: plain reads only).
  static Fiber* running_fiber_unsafe() noexcept;

  // --- every scheduler of the process (the fiber dump; the gdb commands walk it in a live
  // process or a core file: g_schedulers, then next_scheduler_) ---
  // Call fn(s) for each, registry_mu held (fn must not create or destroy a scheduler).
  template <class Fn>
  static void for_each_scheduler(Fn&& fn) {
    std::lock_guard<std::mutex> lock(registry_mu);
    for (Scheduler* s = g_schedulers; s; s = s->next_scheduler_) fn(s);
  }
  int os_tid() const noexcept { return tid_; }
  // Live fibers here (this scheduler's thread only, or with its loop stopped).
  Fiber* first_fiber() const noexcept { return all_head_; }
  static std::mutex registry_mu;
  static Scheduler* g_schedulers;
  // For the fiber dump, on this scheduler's thread, f one of its fibers that is suspended
  // (parked or runnable, not new): f's return addresses, innermost first, read on f's own
  // stack without resuming it (see the definition). 0 if f's stack has less than
  // kUnwindRoom bytes left below where it stopped.
  int unwind_suspended(Fiber* f, void** out, int max) noexcept;
  static constexpr std::size_t kUnwindRoom = 16 << 10;

 private:
  friend void fiber_entry_trampoline(void* t_fctx, void* t_data);

  void raise_interrupts(Fiber* f);
  void interrupt_parked() noexcept;  // the pass's side of interrupt_waits_from_signal()
  void loop();
  void throw_if_deadlocked();  // after the loop: the breaker killed fibers, or some stay
  void switch_to(Fiber* next);
  void switch_out();
  void after_switch(void* from_ctx, Fiber* from) noexcept;
  [[noreturn]] void finish_running();
  void make_ready(Fiber* f) noexcept;
  void fire_timers();
  void drain_remote();
  void post_remote(Fiber* f) noexcept;
  bool remote_posted(std::memory_order mo) const noexcept {
    return inbox_.woken.load(mo) != nullptr || inbox_.pending.load(mo);
  }
  // After queueing remote work: wake the loop if it sleeps (or is about to) in the reactor.
  void ring_if_sleeping() noexcept;
  bool finished_everywhere() noexcept;  // no non-daemon fiber left on any core
  bool spin_for_remote() noexcept;      // true if another core posted within the window
  void count_finished(bool daemon) noexcept;
  // A fiber spawn_on sent here that cannot start (no stack): it ends at once with `error`.
  void abandon(Fiber* f, std::exception_ptr error) noexcept;
  bool all_stuck() const noexcept;
  void break_deadlock();
  // Every fiber and what it waits on, for a report; `core`: with the core each is on (a
  // multi-core run, where ids repeat across cores).
  std::string describe_waits(bool core = false) const;
  // deadlock_waits: report once, keep waiting (or abort).
  void say_deadlock(const std::string& waits);
  // --- the run-wide deadlock check of a group (deadlock.cpp) ---
  // Whether this core is quiet (every fiber parked, nothing it could wake itself from: no
  // timer, no I/O, no wake owed by a thread outside the run) and, if every core is, what
  // the run does about it. True when the pass must look again (work was posted here).
  bool run_deadlock_check();
  // A core that said it was quiet takes it back before it does anything (the top of every
  // pass): any detector that read it quiet sees the sequence move.
  void leave_run_quiet() noexcept {
    quiet_declared_ = false;
    run_quiet_.store(false, std::memory_order_seq_cst);
    run_quiet_seq_.fetch_add(1, std::memory_order_seq_cst);
  }
  // After a post here has become visible (remote_posted): if this core said it was quiet,
  // move its sequence, so that a detector that read its inbox empty earlier sees the change.
  // (Paired seq_cst with run_deadlock_check's declaration then look at the inbox.)
  void note_post() noexcept {
    if (group_ && run_quiet_.load(std::memory_order_seq_cst))
      run_quiet_seq_.fetch_add(1, std::memory_order_seq_cst);
  }
  void break_run_deadlock(const std::string& report);  // on this core's loop, for the detector
  bool leave_loop_ = false;  // the run is deadlocked and nothing can be killed: the loop ends
  void kill_daemons();
  void check_stack(Fiber* f);
  void load_tp(void* tp) noexcept;  // make tp (null: home) the thread pointer in force
  // A switch to a fiber whose thread pointer is not cur_tp_: load it, and account CPU time.
  void switch_slow(Fiber* prev, void* next_tp) noexcept;
  // Charge prev for the interval ending now (inline: short intervals; long ones out of line).
  void account_cpu(Fiber* prev) noexcept;
  void account_long_interval(Fiber* prev, std::uint64_t ticks) noexcept;
  // What a long interval of `elapsed` ns ending now is charged; the OS thread's CPU time,
  // read for it, in *cpu_now.
  std::uint64_t cpu_charge(std::uint64_t elapsed, std::uint64_t* cpu_now) const noexcept;

  // --- run queue ---
  Fiber* ready_head_ = nullptr;
  Fiber* ready_tail_ = nullptr;
  Fiber* pop_ready() noexcept {
    Fiber* f = ready_head_;
    if (f) {
      ready_head_ = st(f).next_ready;
      if (!ready_head_) ready_tail_ = nullptr;
      st(f).next_ready = nullptr;
    }
    return f;
  }

  // Fibers that gave way at a fairness point: made ready after the loop's next poll.
  Fiber* later_head_ = nullptr;
  Fiber* later_tail_ = nullptr;
  void ready_later() noexcept;  // the loop: append them to the run queue
  void fair_point_again() noexcept;
  std::uint64_t fair_switches_ = ~std::uint64_t{0};  // switch count at the last fairness point
  std::uint64_t fair_since_ = 0;  // the cheap clock at the second point of this run, or 0
  std::atomic<std::uint64_t> fair_yields_{0};  // written by this thread only

  // __thread, not thread_local: no dynamic-initialisation wrapper on every access.
  static __thread Scheduler* tls_current_ __attribute__((tls_model("initial-exec")));

  void* eh_globals_;  // this thread's __cxa_eh_globals, swapped per fiber at each switch
  int* errno_;        // this thread's errno (its address is fixed), swapped likewise
  NativeContext native_;
  Fiber* running_ = &native_;
  int direct_budget_ = 0;  // fiber-to-fiber switches left before the loop polls again
  bool cpu_on_ = false;    // enable_cpu_accounting(): charge fibers at every switch
  void* home_tp_ = nullptr;  // this OS thread's own thread pointer
  void* tp_in_force_ = nullptr;  // the TLS block in force: a fiber's own, or null for home's
  // What switch_to compares the next fiber's tp with: tp_in_force_, or accounting_tp() (no
  // fiber's: a TCB is aligned) while CPU time is accounted, so that every switch takes
  // switch_slow.
  void* cur_tp_ = nullptr;
  static void* accounting_tp() noexcept { return reinterpret_cast<void*>(1); }

  Fiber* all_head_ = nullptr;    // live fibers
  std::size_t live_ = 0;  // written through set_live (read by other threads: alive_count)
  void set_live(std::size_t n) noexcept { __atomic_store_n(&live_, n, __ATOMIC_RELAXED); }
  std::size_t peak_ = 0;  // written by spawn (relaxed), read by any thread: peak_count
  std::size_t live_nondaemon_ = 0;
  Fiber* main_ = nullptr;
  bool main_done_ = false;
  std::uint64_t next_id_ = 1;
  std::string deadlock_report_;
  bool deadlock_killed_ = false;  // the breaker killed fibers: run() throws

  TimerHeap timers_;
  StackPool stacks_;
  std::unique_ptr<Reactor> reactor_;

  Inbox inbox_;  // what other threads post here (remote.cpp)
  // Next to the inbox's flags, which a poster has just touched (note_post reads run_quiet_).
  std::atomic<bool> run_quiet_{false};
  std::atomic<std::uint64_t> run_quiet_seq_{0};
  std::shared_ptr<SchedulerLink> link_;
  CoreGroup* group_ = nullptr;
  unsigned core_ = 0;
  static constexpr int kSpinCredit = 8;  // fruitless spins before a core stops spinning
  std::chrono::microseconds spin_window_{20};
  int spin_credit_ = kSpinCredit;  // 0 with spin_window_ 0: never
  std::atomic<std::size_t> remote_expected_{0};
  std::size_t primitive_waits_ = 0;
  std::size_t signal_waits_ = 0;       // parked waits a signal handler may end
  std::uint64_t deadlock_said_at_ = ~std::uint64_t{0};  // switch count when say_deadlock spoke
  // The run-wide check's view of this core (run_deadlock_check): said quiet, a sequence any
  // change after that moves, and the primitive and signal waits parked when it was said.
  bool quiet_declared_ = false;  // this thread's copy of run_quiet_
  std::atomic<std::size_t> quiet_primitive_{0};
  std::atomic<std::size_t> quiet_signal_{0};

  std::atomic<std::uint64_t> switches_{0};  // written by this thread only
  // Holding nothing, for the blocking monitor: asleep in the reactor, or outside loop() (not
  // begun: a core waiting for the run's other threads to start; or ended).
  std::atomic<bool> idle_{true};
  std::atomic<bool> interrupt_requested_{false};  // set from signal handlers on this thread
  long monitor_ms_ = 0;
  // Per-fiber run time (enable_cpu_accounting): the cheap clock and the ticks of
  // kCpuCheckNs on it; its reading at the last switch; the OS thread's CPU time at the last
  // check of it; what intervals were charged since.
  CheapClock clock_;
  std::uint64_t check_ticks_ = 0;
  std::uint64_t slice_start_ = 0;
  std::uint64_t cpu_base_ = 0;
  std::uint64_t charged_since_base_ = 0;
  // For other cores' readers of a running fiber's clock: who runs since which tick.
  std::atomic<const Fiber*> acct_fiber_{nullptr};
  std::atomic<std::uint64_t> acct_since_{0};
  bool deadlock_waits_ = false;  // RunOptions::deadlock_waits

  void* altstack_ = nullptr;
  bool own_altstack_ = false;
  Scheduler* prev_current_ = nullptr;
  Scheduler* next_scheduler_ = nullptr;  // the registry (g_schedulers)
  int tid_ = 0;                           // its OS thread (gettid)
  alignas(64) Counters counters_;
  void leave_group_after_fork() noexcept;
  void register_self() noexcept;
  void unregister_self() noexcept;
  friend void forget_other_schedulers() noexcept;
};

}  // namespace ringlet::detail
