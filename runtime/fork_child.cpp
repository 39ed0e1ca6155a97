// A forked child of a ringlet process: the scheduler of the forking thread is the only one
// left (the registry, its engine, its group), and the fibers of other threads are forgotten
// (the patch's fork keeps its caller only). Scheduler's side; pthread_atfork's child handler
// (scheduler.cpp) calls it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "internal/cpu_clock.hpp"
#include "internal/scheduler.hpp"

namespace ringlet::detail {

// In a forked child only the forking thread exists: the registry keeps its scheduler only
// (the others' memory stays; their threads are gone). The mutex may have been held by a
// thread that is gone: it is made anew. A wake or post still aimed at a gone scheduler (a
// fiber of another core whose join a fiber here ends, say) lands in its inbox and is never
// taken: it must not ring it, whose eventfd is the parent's loop's (or, once the child has
// closed it, a number the child may have reused): its loop counts as awake. Its inbox's lock,
// perhaps held by a thread that is gone, is made anew, so that such a post cannot spin.
void forget_other_schedulers() noexcept {
  new (&Scheduler::registry_mu) std::mutex;
  Scheduler* mine = Scheduler::current();
  for (Scheduler* s = Scheduler::g_schedulers; s; s = s->next_scheduler_) {
    if (s == mine) continue;
    s->inbox_.sleeping.store(false, std::memory_order_relaxed);
    new (&s->inbox_.mu) SpinLock;
  }
  Scheduler::g_schedulers = mine;
  if (mine) mine->next_scheduler_ = nullptr;
}

void Scheduler::register_self() noexcept {
  tid_ = static_cast<int>(::gettid());
  std::lock_guard<std::mutex> lock(registry_mu);
  next_scheduler_ = g_schedulers;
  g_schedulers = this;
}

void Scheduler::unregister_self() noexcept {
  std::lock_guard<std::mutex> lock(registry_mu);
  for (Scheduler** p = &g_schedulers; *p; p = &(*p)->next_scheduler_)
    if (*p == this) {
      *p = next_scheduler_;
      break;
    }
}

void Scheduler::after_fork_child() noexcept {
  tid_ = static_cast<int>(::gettid());  // the child's thread (the registry, ringlet::stats)
  if (group_) leave_group_after_fork();
  const bool uring = reactor_ && std::strcmp(reactor_->name(), "io_uring") == 0;
  reactor_.reset();  // unmaps and closes the child's references; waits for nothing
  std::string why;
  if (uring) reactor_ = create_uring_reactor(*this, why);
  if (!reactor_) reactor_ = create_epoll_reactor(*this, why);
  if (!reactor_) {
    std::fprintf(stderr, "ringlet: forked child cannot start an engine: %s\n", why.c_str());
    std::abort();
  }
  if (cpu_on_) {
    // The child's thread is a new one, its CPU time from 0; so is the fiber that forked.
    if (Fiber* f = running()) st(f).cpu_ns.store(0, std::memory_order_relaxed);
    cpu_base_ = os_thread_cpu_ns();
    charged_since_base_ = 0;
    slice_start_ = cheap_ticks(clock_);
  }
}

// A forked child of a multi-core run has one thread, this core's: its run is single-core from
// now on. The other cores' schedulers, fibers and threads are gone with their threads (their
// memory stays, untouched: their reactors' descriptors are the parent's too). The group's
// counts covered every core; this scheduler's own counts are the run's now. Fibers that
// another core posted here before the fork (wakes, spawns, calls) stay, as this core's own
// fibers do; what this core posted to another is lost with it. The inbox's lock may have been
// held by a thread that is gone: it is made anew. (A post caught by the fork in the middle of
// its push_back, a few instructions under that lock, may leave its vector half-grown: not
// guarded against.)
void Scheduler::leave_group_after_fork() noexcept {
  group_ = nullptr;
  core_ = 0;
  spin_credit_ = 0;  // no other core can post: never spin
  new (&inbox_.mu) SpinLock;
}

void Scheduler::forget_other_fibers() noexcept {
  Fiber* keep = running_;
  ready_head_ = ready_tail_ = nullptr;
  later_head_ = later_tail_ = nullptr;  // fibers that gave way at a fairness point: others too
  // What other threads posted here before the fork is theirs: dropped, not run (the fibers
  // and functions stay as they are, never destroyed: their owners are gone).
  // (The running fiber's own wake, posted before it parks, stays: its park takes it.)
  Fiber* kept_wake = nullptr;
  for (Fiber* w = inbox_.woken.exchange(nullptr, std::memory_order_relaxed); w;) {
    Fiber* next = st(w).remote_next;
    st(w).remote_next = nullptr;
    if (w == keep) kept_wake = w;
    w = next;
  }
  inbox_.woken.store(kept_wake, std::memory_order_relaxed);
  new (&inbox_.mu) SpinLock;
  for (auto* v : {&inbox_.tasks, &inbox_.calls}) new (v) std::vector<std::function<void()>>;
  new (&inbox_.spawns) std::vector<Inbox::Spawn>;
  inbox_.pending.store(false, std::memory_order_relaxed);
  // Counts kept for parked fibers (remote wakes expected, waits on primitives or signals):
  // the only fiber left is running, in no wait.
  remote_expected_.store(0, std::memory_order_relaxed);
  primitive_waits_ = 0;
  signal_waits_ = 0;
  Fiber* f = all_head_;
  all_head_ = nullptr;
  set_live(0);
  live_nondaemon_ = 0;
  while (f) {
    Fiber* next = st(f).all_next;
    st(f).all_prev = st(f).all_next = nullptr;
    if (f == keep) {
      all_head_ = f;
      set_live(live_ + 1);
      if (!st(f).daemon) ++live_nondaemon_;
    } else {
      // Every waker holds a token the epoch has left behind: none can make it ready.
      st(f).epoch.fetch_add(std::uint64_t{1} << 40, std::memory_order_acq_rel);
      st(f).status = FiberStatus::Gone;
      st(f).next_ready = nullptr;
      if (f == main_) main_done_ = true;
    }
    f = next;
  }
}

}  // namespace ringlet::detail
