#include "internal/hot.hpp"
#include "internal/scheduler.hpp"
#include "internal/thread_pointer.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <boost/context/detail/fcontext.hpp>
#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "internal/backtrace.hpp"
#include "internal/cpu_clock.hpp"
#include "internal/dump.hpp"
#include "internal/env.hpp"
#include "internal/signals.hpp"
#include "internal/switch.hpp"
#include "ringlet/fiber.hpp"

#include "internal/fiber_sanitizers.hpp"

namespace ctx = boost::context::detail;

namespace ringlet::detail {

__thread Scheduler* Scheduler::tls_current_ = nullptr;
std::mutex Scheduler::registry_mu;
Scheduler* Scheduler::g_schedulers = nullptr;
std::atomic<long> quiet_threads{0};

namespace {

// Fiber-to-fiber switches allowed before control returns to the loop to flush submissions,
// reap completions and fire timers; bounds how long a yielding crowd can starve I/O.
constexpr int kDirectBudget = 64;

// libstdc++ keeps the caught-exception stack and uncaught count per thread. Fibers that
// switch inside a catch block would tangle it, so each fiber carries its own copy.
struct EhGlobals {
  void* caught;
  unsigned int uncaught;
};
static_assert(sizeof(EhGlobals) <= sizeof(FiberState::eh_globals));

}  // namespace

// The first code a new fiber runs.
void fiber_entry_trampoline(void* t_fctx, void* t_data) {
  Scheduler* s = Scheduler::current();
#if RINGLET_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &st(static_cast<Fiber*>(t_data)).asan_stack_bottom,
                                  &st(static_cast<Fiber*>(t_data)).asan_stack_size);
#endif
  s->after_switch(t_fctx, static_cast<Fiber*>(t_data));
  Fiber* f = s->running_;
  st(f).started = true;
  try {
    if (st(f).kill_pending) {  // killed before it ever ran
      st(f).kill_pending = false;
      throw GreenletExit{};
    }
    f->invoke();
  } catch (const GreenletExit&) {
    st(f).killed = true;
    f->error = std::current_exception();
  } catch (...) {
    f->error = std::current_exception();
  }
  f->drop_callable();
  destroy_fls(f);
  s->finish_running();
}

namespace {
void entry(ctx::transfer_t t) { fiber_entry_trampoline(t.fctx, t.data); }
}  // namespace

bool is_fiber_entry(const void* function_start) noexcept {
  return function_start == reinterpret_cast<const void*>(&entry) ||
         function_start == reinterpret_cast<const void*>(&fiber_entry_trampoline);
}

namespace {
// A forked child must not touch its parent's ring or epoll set (they are shared with the
// parent, and a SINGLE_ISSUER ring refuses a second task): it gets an engine of its own.
void after_fork_in_child() noexcept {
  forget_other_schedulers();
  if (Scheduler* s = Scheduler::current()) s->after_fork_child();
}
}  // namespace

Scheduler::Scheduler(const RunOptions& opts)
    : eh_globals_(abi::__cxa_get_globals()),
      errno_(&errno),
      stacks_(opts.stack_size ? opts.stack_size : env_stack_size()) {
  if (tls_current_)
    throw std::logic_error("ringlet::run: this thread already runs a scheduler (nested run)");
  // Every setting is read (and a malformed one refused) before anything is set up: past
  // this point the thread is marked as running a scheduler, which a throw would leave behind.
  const long spin_us = opts.spin_us >= 0 ? std::min(opts.spin_us, 1000L) : env_spin_us();
  const long monitor_ms = monitor_threshold(opts.max_blocking_ms);
  Backend backend = opts.backend == Backend::Auto ? env_backend() : opts.backend;
  std::string why;
  if (backend != Backend::Epoll) {
    reactor_ = create_uring_reactor(*this, why);
    if (!reactor_ && backend == Backend::IoUring)
      throw std::runtime_error("ringlet: io_uring was requested but cannot run here: " + why);
  }
  if (!reactor_) {
    std::string why_epoll;
    reactor_ = create_epoll_reactor(*this, why_epoll);
    if (!reactor_) throw std::runtime_error("ringlet: no engine can run here: " + why_epoll);
    // A fallback is said once; epoll asked for by name is not news (and in a program that
    // runs on ringlet unmodified, stderr belongs to the program).
    if (backend != Backend::Epoll) say_once_engine("epoll, because io_uring " + why);
  }
  if (env_verbose()) std::fprintf(stderr, "ringlet: engine %s\n", reactor_->describe().c_str());
  install_fault_handler();
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &after_fork_in_child); });
  altstack_ = setup_altstack(own_altstack_);
  link_ = std::make_shared<SchedulerLink>();
  link_->sched = this;
  st(&native_).status = FiberStatus::Running;
  st(&native_).started = true;  // the thread's own stack: resumed like a started fiber
  st(&native_).sched = this;
#if RINGLET_TSAN
  st(&native_).tsan_fiber = __tsan_get_current_fiber();
#endif
  native_.name = "(scheduler loop)";
  tls_current_ = this;
  home_tp_ = thread_pointer();
  spin_window_ = std::chrono::microseconds(spin_us);
  deadlock_waits_ = opts.deadlock_waits;
  if (spin_window_.count() == 0) spin_credit_ = 0;
  monitor_ms_ = monitor_ms;
  if (monitor_ms_ > 0) monitor_register(this, monitor_ms_);
  register_self();
}

Scheduler::~Scheduler() {
  unregister_self();
  if (monitor_ms_ > 0) monitor_unregister(this);
  {
    std::lock_guard<std::mutex> lock(link_->mu);
    link_->sched = nullptr;
  }
  tls_current_ = nullptr;
  reactor_.reset();
  teardown_altstack(altstack_, own_altstack_);
}

Fiber* Scheduler::running_fiber_unsafe() noexcept {
  Scheduler* s = tls_current_;
  return s ? s->running() : nullptr;
}

void Scheduler::spawn(Fiber* f, const SpawnOptions& opts, bool counted) {
  if (!opts.name.empty()) f->name = opts.name;
  st(f).daemon = opts.daemon;
  // spawn_on set it already: handles on other cores read it
  if (st(f).sched != this) st(f).sched = this;
  f->id = next_id_;
  __atomic_store_n(&next_id_, next_id_ + 1, __ATOMIC_RELAXED);  // spawned_count() reads it
  try {
    st(f).stack = stacks_.acquire(opts.stack_size);
  } catch (...) {
    st(f).status = FiberStatus::Done;
    if (counted) throw;  // the caller settles it (abandon)
    f->finished.store(true, std::memory_order_release);
    f->release();  // the creation reference; the caller's handle still holds one
    throw;
  }
  if (group_ && !counted) {
    group_->live.fetch_add(1, std::memory_order_relaxed);
    if (!st(f).daemon) group_->live_nondaemon.fetch_add(1, std::memory_order_relaxed);
  }
#if RINGLET_TSAN
  st(f).tsan_fiber = __tsan_create_fiber(0);
#endif
  st(f).ctx = ctx::make_fcontext(st(f).stack.lo + st(f).stack.size, st(f).stack.size, &entry);
  st(f).asan_stack_bottom = st(f).stack.lo;
  st(f).asan_stack_size = st(f).stack.size;
  st(f).all_next = all_head_;
  if (all_head_) st(all_head_).all_prev = f;
  all_head_ = f;
  const std::size_t live = live_ + 1;
  set_live(live);
  if (!st(f).daemon) ++live_nondaemon_;
  if (live > peak_) __atomic_store_n(&peak_, live, __ATOMIC_RELAXED);
  make_ready(f);
}

void Scheduler::run_main(Fiber* main) {
  main_ = main;
  try {
    spawn(main, SpawnOptions{}, /*counted=*/group_ != nullptr);  // RunHost counted it
  } catch (...) {
    if (group_) abandon(main, nullptr);
    throw;
  }
  loop();
  throw_if_deadlocked();
}

// The whole runtime, one pass per iteration: collect what the kernel finished, take
// wake-ups from other threads, fire due timers, run what is ready; when nothing is, sleep in
// the reactor until the next timer or completion.
RINGLET_HOT void Scheduler::loop() {
  bool waited = false;  // the last pass ended in reactor_->wait(), which reaped already
  idle_.store(false, std::memory_order_relaxed);  // the monitor watches from here (idle_)
  for (;;) {
    direct_budget_ = kDirectBudget;
    if (quiet_declared_) leave_run_quiet();  // before anything this pass may change
    if (interrupt_requested_.load(std::memory_order_relaxed)) interrupt_parked();
    if (dump_thread_wanted.load(std::memory_order_relaxed)) start_dump_thread();
    // Collect completions without blocking only when fibers are waiting to run (so woken
    // ones queue behind them); with nothing to run, the wait below submits and reaps in
    // the same kernel entry. One entry per round trip for a lone connection, as a
    // hand-written io_uring loop does.
    if (!waited && (ready_head_ || later_head_)) reactor_->poll();
    waited = false;
    drain_remote();
    if (!timers_.empty()) fire_timers();
    if (later_head_) ready_later();  // behind what the poll woke
    if (Fiber* f = pop_ready()) {
      switch_to(f);
      continue;
    }
    if (group_ ? finished_everywhere() : live_nondaemon_ == 0) {
      // main and every non-daemon fiber (of every core) have finished
      if (live_ == 0 && (!group_ || group_->live.load(std::memory_order_acquire) == 0)) break;
      if (live_ != 0) kill_daemons();
      if (ready_head_) continue;
    }
    if (group_) {
      // A deadlock of a multi-core run is the whole run's (deadlock.cpp).
      if (leave_loop_) {
        // Deadlocked and nothing left to kill: fibers that ignore kills stay behind;
        // run_main/run_worker report them. The other cores must not wait for them.
        group_->live.fetch_sub(static_cast<long>(live_), std::memory_order_acq_rel);
        group_->live_nondaemon.fetch_sub(static_cast<long>(live_nondaemon_), std::memory_order_acq_rel);
        group_->broadcast();
        break;
      }
      // (The run-wide check comes below, once this core has stopped looking for posts.)
    } else if (deadlock_waits_) {
      // Threads that all wait keep waiting, as natively; a proven deadlock is said once.
      if (signal_waits_ == 0 && deadlock_said_at_ != switches_.load(std::memory_order_relaxed) && all_stuck()) {
        deadlock_said_at_ = switches_.load(std::memory_order_relaxed);
        say_deadlock(describe_waits());
      }
    } else if (all_stuck()) {
      break_deadlock();
      if (ready_head_) continue;
      break;  // fibers that ignore kills stay behind; run_main reports them
    }
    // A core of a group with nothing in flight mostly waits for other cores: look for
    // their posts a little before sleeping, so a wake-up costs no kernel entry on either
    // side. Only while it pays: spins that find nothing use up the credit, a wake-up from
    // another core restores it.
    if (group_ && spin_credit_ > 0 && reactor_->in_flight() == 0) {
      // First send what is queued (a wake-up for another core), but reap nothing: a
      // completion taken here (the eventfd that says the run is over, a signal) would be
      // lost to this pass, which has already looked, and the sleep below would not see it.
      reactor_->flush();
      if (spin_for_remote()) continue;
    }
    // Only a core about to sleep in the kernel says it is quiet and checks the run: a core
    // spinning for the next hand-off pays nothing for the check.
    if (group_ && run_deadlock_check()) continue;
    stacks_.trim();
    // Announce the sleep, then look once more: a poster either sees it and rings, or
    // posted before the look (both seq_cst).
    inbox_.sleeping.store(true, std::memory_order_seq_cst);
    if (remote_posted(std::memory_order_seq_cst)) {
      inbox_.sleeping.store(false, std::memory_order_relaxed);
      continue;
    }
    idle_.store(true, std::memory_order_relaxed);
    counters_.sleeps.add();
    reactor_->wait(timers_.empty() ? Deadline::never() : Deadline{timers_.top()->when});
    idle_.store(false, std::memory_order_relaxed);
    inbox_.sleeping.store(false, std::memory_order_relaxed);
    if (group_ && spin_window_.count() && remote_posted(std::memory_order_relaxed)) spin_credit_ = kSpinCredit;
    waited = true;
  }
  reactor_->poll();  // send what is still queued (a wake-up for another core)
  idle_.store(true, std::memory_order_relaxed);  // what follows (joining the cores) holds no fiber
}

void Scheduler::run_worker() {
  loop();
  throw_if_deadlocked();
}

RINGLET_HOT void Scheduler::switch_to(Fiber* next) {
  Fiber* prev = running_;
  if (st(prev).stack.protection == StackProtection::Checked && prev != &native_) check_stack(prev);
  if (next == prev) {
    st(prev).status = FiberStatus::Running;
    return;
  }
  auto* g = static_cast<EhGlobals*>(eh_globals_);
  std::memcpy(st(prev).eh_globals, g, sizeof(EhGlobals));
  std::memcpy(g, st(next).eh_globals, sizeof(EhGlobals));
  running_ = next;
  // A fiber with a TLS block of its own: load its thread pointer before anything below
  // touches a thread-local, so that tls_identity is written where `next` will read it.
  // While CPU time is accounted, cur_tp_ matches no fiber and every switch comes here too
  // (the plain switch pays no test of its own for accounting).
  if (__builtin_expect(st(next).tp != cur_tp_, 0)) switch_slow(prev, st(next).tp);
  tls_identity = next == &native_ ? nullptr : next;
  st(prev).saved_errno = *errno_;
  *errno_ = st(next).saved_errno;
  switches_.store(switches_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  st(next).status = FiberStatus::Running;
#if RINGLET_ASAN
  __sanitizer_start_switch_fiber(
      st(prev).status == FiberStatus::Done ? nullptr : &st(prev).asan_fake_stack,
      st(next).asan_stack_bottom, st(next).asan_stack_size);
#endif
#if RINGLET_TSAN
  __tsan_switch_to_fiber(st(next).tsan_fiber, 0);
#endif
  // A switch between two fibers that both live on returns by `ret` (internal/switch.hpp): the
  // switched-out fiber's `call` is matched by the resumed one's return. A fiber's first entry
  // (make_fcontext's trampoline, a target the indirect-branch predictor learns) and a
  // finished fiber's last switch (its calls never return) resume by an indirect jump, as
  // Boost does: with `ret` there, spawn+run+join measured 474 -> 665 ns a fiber
  // (bench/RESULTS.md).
#if RINGLET_OWN_SWITCH
  ctx::transfer_t t = ringlet_jump_fcontext(st(next).ctx, prev,
                                            !st(next).started || st(prev).status == FiberStatus::Done);
#else
  ctx::transfer_t t = ctx::jump_fcontext(st(next).ctx, prev);
#endif
#if RINGLET_ASAN
  const void* from_bottom = nullptr;
  std::size_t from_size = 0;
  __sanitizer_finish_switch_fiber(st(prev).asan_fake_stack, &from_bottom, &from_size);
  if (static_cast<Fiber*>(t.data) == &native_) {
    st(&native_).asan_stack_bottom = from_bottom;
    st(&native_).asan_stack_size = from_size;
  }
#endif
  after_switch(t.fctx, static_cast<Fiber*>(t.data));
}

// Runs on the stack we switched to. A finished fiber's stack can only be recycled here,
// once nothing runs on it any more.
RINGLET_HOT void Scheduler::after_switch(void* from_ctx, Fiber* from) noexcept {
  if (st(from).status == FiberStatus::Done) {
#if RINGLET_TSAN
    __tsan_destroy_fiber(st(from).tsan_fiber);
    st(from).tsan_fiber = nullptr;
#endif
    stacks_.release(st(from).stack);
    st(from).stack = {};
    from->release();  // the scheduler's reference
  } else {
    st(from).ctx = from_ctx;
  }
}

RINGLET_HOT void Scheduler::switch_out() {
  Fiber* next = nullptr;
  if (direct_budget_ > 0 && (next = pop_ready())) --direct_budget_;
  switch_to(next ? next : &native_);
}

void Scheduler::finish_running() {
  Fiber* f = running_;
  if (st(f).stack.protection == StackProtection::Checked) check_stack(f);
  st(f).status = FiberStatus::Done;
  st(f).tp = nullptr;  // a fiber that ends still owning a TLS block: the next switch leaves it
  if (st(f).all_prev) st(st(f).all_prev).all_next = st(f).all_next;
  else all_head_ = st(f).all_next;
  if (st(f).all_next) st(st(f).all_next).all_prev = st(f).all_prev;
  set_live(live_ - 1);
  if (!st(f).daemon) --live_nondaemon_;
  if (f == main_) main_done_ = true;
  {
    std::lock_guard<SpinLock> lock(st(f).join_lock);
    f->finished.store(true, std::memory_order_seq_cst);
    st(f).joiners.grant_all();
  }
  if (f->handles.load(std::memory_order_seq_cst) == 0) report_unobserved(f);
  count_finished(st(f).daemon);
  switch_out();
  std::abort();  // unreachable: nobody resumes a finished fiber
}

RINGLET_HOT void Scheduler::make_ready(Fiber* f) noexcept {
  st(f).status = FiberStatus::Ready;
  st(f).next_ready = nullptr;
  if (ready_tail_) st(ready_tail_).next_ready = f;
  else ready_head_ = f;
  ready_tail_ = f;
}

RINGLET_HOT bool Scheduler::wake(Fiber* f, std::uint64_t token, WakeReason r) noexcept {
  std::uint64_t expected = token;
  if (!st(f).epoch.compare_exchange_strong(expected, token + 1, std::memory_order_acq_rel,
                                        std::memory_order_relaxed))
    return false;
  st(f).reason = r;
  Scheduler* s = st(f).sched;
  if (tls_current_ == s) s->make_ready(f);
  else s->post_remote(f);
  return true;
}

void Scheduler::spawn_task(std::function<void()> fn) {
  Fiber* f = make_fiber(std::move(fn));
  f->name = "callback";
  spawn(f, SpawnOptions{});  // no handle: an exception it ends with is reported
}

void Scheduler::fire_timers() {
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.top()->when <= now) {
    TimerNode* n = timers_.pop();
    if (wake(n->fiber, n->token, WakeReason::TimedOut)) counters_.timers_fired.add();
  }
}

void Scheduler::raise_interrupts(Fiber* f) {
  if (st(f).kill_pending) {
    st(f).kill_pending = false;
    throw GreenletExit{};
  }
  if (!st(f).deadline.deadline.is_never() && Clock::now() >= st(f).deadline.deadline.time())
    throw Timeout::Expired(st(f).deadline.owner, st(f).deadline.deadline);
}

RINGLET_HOT WakeReason Scheduler::park(std::uint64_t token, Deadline d, WaitInfo info, bool interruptible) {
  Fiber* f = running_;
  assert(f != &native_ && "the scheduler loop cannot park");
  st(f).park_token = token;
  info.since_ns = coarse_now_ns();
  st(f).waiting = &info;  // this frame outlives the park
  st(f).interruptible = interruptible;
  TimerNode timer;
  // Kept in a register across the switch: a wait with no deadline does not read its timer
  // node back at the resume (a line of this cold frame when many fibers take turns).
  const bool timed = !d.is_never();
  if (timed) {
    timer.when = d.time();
    timer.fiber = f;
    timer.token = token;
    timers_.push(&timer);
    counters_.timers_armed.add();
  }
  // A kill that arrived while we were running: wake ourselves so the wait ends at once.
  if (interruptible && st(f).kill_pending) wake(f, token, WakeReason::Killed);
  // Ready: woken already
  if (st(f).status != FiberStatus::Ready) st(f).status = FiberStatus::Parked;
  switch_out();
  if (timed && timer.queued()) timers_.remove(&timer);
  st(f).interruptible = false;
  st(f).waiting = nullptr;
  return st(f).reason;
}

RINGLET_HOT void Scheduler::yield() {
  Fiber* f = running_;
  make_ready(f);
  switch_out();
  check_interrupts(f);
}

void Scheduler::yield_nothrow() noexcept {
  make_ready(running_);
  switch_out();
}

__attribute__((noinline)) void Scheduler::fair_point_again() noexcept {
  const CheapClock& c = cheap_clock();
  const std::uint64_t now = cheap_ticks(c);
  if (fair_since_ == 0) {
    fair_since_ = now;
    return;
  }
  if (ticks_to_ns(c, now - fair_since_) < kFairSliceNs) return;
  Fiber* f = running_;
  if (f == &native_) return;
  fair_yields_.store(fair_yields_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  st(f).status = FiberStatus::Ready;
  st(f).next_ready = nullptr;
  if (later_tail_) st(later_tail_).next_ready = f;
  else later_head_ = f;
  later_tail_ = f;
  switch_out();
}

void Scheduler::ready_later() noexcept {
  Fiber* f = later_head_;
  later_head_ = later_tail_ = nullptr;
  while (f) {
    Fiber* next = st(f).next_ready;
    make_ready(f);
    f = next;
  }
}

void Scheduler::kill(Fiber* f) {
  if (st(f).status == FiberStatus::Done || st(f).status == FiberStatus::Gone) return;
  st(f).kill_pending = true;
  st(f).kill_sent = true;
  if (st(f).status == FiberStatus::Parked && st(f).interruptible)
    wake(f, st(f).park_token, WakeReason::Killed);
}

void Scheduler::interrupt_parked() noexcept {
  interrupt_requested_.store(false, std::memory_order_relaxed);
  for (Fiber* f = all_head_; f; f = st(f).all_next)
    if (st(f).status == FiberStatus::Parked && st(f).interruptible && st(f).interrupt_wait)
      wake(f, st(f).park_token, WakeReason::Interrupted);
}

void Scheduler::kill_daemons() {
  for (Fiber* f = all_head_; f; f = st(f).all_next)
    if (st(f).daemon && !st(f).kill_sent) kill(f);
}

// Reads the canary wherever the stack pointer went: possibly inside ASan redzones of the
// overflowing frames, which is the point.
__attribute__((no_sanitize("address"))) void Scheduler::check_stack(Fiber* f) {
  // The frame address, not a local's: under ASan locals may live on a heap "fake stack".
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  const bool canary_ok =
      *reinterpret_cast<const std::uint64_t*>(st(f).stack.lo) == StackPool::kCanary;
  if (!canary_ok || (sp >= st(f).stack.lo && sp < st(f).stack.lo + 256) || sp < st(f).stack.lo)
    report_overflow(f, canary_ok ? sp : st(f).stack.lo, /*at_switch=*/true);
}

}  // namespace ringlet::detail
