// The run host: run() puts one scheduler on the calling thread (core 0) and, with
// RunOptions::threads > 1, one more on a thread of its own per core, all in one CoreGroup; it
// starts them together, waits for every loop to end, and hands back the first failure.
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <latch>
#include <stdexcept>
#include <string>
#include <vector>

#include "internal/dump.hpp"
#include "internal/native_thread.hpp"
#include "internal/scheduler.hpp"
#include "ringlet/run.hpp"

namespace ringlet::detail {

// --- the run host: one scheduler on this thread, and with threads > 1 one more per core ---

namespace {

constexpr unsigned kMaxThreads = 1024;

unsigned resolve_threads(unsigned asked, std::vector<int>& cpus) {
  if (asked > kMaxThreads)
    throw std::invalid_argument("ringlet::run: RunOptions::threads = " + std::to_string(asked) +
                                " is more than " + std::to_string(kMaxThreads) +
                                " (one scheduler per core; 0 = one per CPU)");
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  if (asked != 0) return asked;
  return cpus.empty() ? 1 : static_cast<unsigned>(cpus.size());
}

void pin_to(pthread_t t, int cpu) noexcept {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pthread_setaffinity_np(t, sizeof one, &one);  // a refusal (cgroup) leaves it unpinned
}

}  // namespace

// What only the host needs, beside the CoreGroup the schedulers see.
struct GroupHost {
  CoreGroup group;
  std::vector<NativeThread> threads;
  std::latch started;
  std::latch go{1};
  std::latch loops_done;
  std::atomic<bool> abort{false};
  bool released = false;
  explicit GroupHost(unsigned n) : started(n - 1), loops_done(n) {}
  void release(bool abort_run) {
    if (released) return;
    released = true;
    abort.store(abort_run, std::memory_order_relaxed);
    go.count_down();
  }
  void record(std::exception_ptr e) {
    std::lock_guard lock(group.error_mu);
    if (!group.error) group.error = std::move(e);
  }
};

namespace {

// A scheduler thread of core k > 0: process-directed signals stay with the thread that
// called run() (only synchronous faults and the monitor's signal get through here).
void core_thread(GroupHost* h, unsigned k, RunOptions opts, int cpu) {
  sigset_t mask;
  sigfillset(&mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGRTMAX - 1}) sigdelset(&mask, sig);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  if (cpu >= 0) pin_to(pthread_self(), cpu);
  std::unique_ptr<Scheduler> s;
  try {
    s = std::make_unique<Scheduler>(opts);
    s->join_group(&h->group, k);
    h->group.scheds[k] = s.get();
  } catch (...) {
    h->record(std::current_exception());
  }
  h->started.count_down();
  h->go.wait();
  if (s && !h->abort.load(std::memory_order_relaxed)) {
    try {
      s->run_worker();
    } catch (...) {
      if (s->group() != &h->group) throw;  // a forked child's: as an exception out of a thread
      h->record(std::current_exception());
    }
    if (s->group() != &h->group) {
      // A fiber here forked, and this is the child, whose only thread this is: its run was
      // single-core (Scheduler::after_fork_child) and has ended. No other loop to wait for,
      // nobody to join this thread: it ends, and with it the child, with status 0, as when a
      // process's last thread returns.
      s.reset();
      return;
    }
  }
  // Every core's loop ends before any scheduler goes: a message in flight from another
  // core may still name this one.
  h->loops_done.arrive_and_wait();
  s.reset();
}

}  // namespace

RunHost::RunHost(const RunOptions& opts) {
  std::vector<int> cpus;
  const unsigned n = resolve_threads(opts.threads, cpus);  // a bad count throws before anything
  const int dump_sig = dump_signal_setting(opts.dump_signal);  // a bad setting throws before anything
  sched_ = new Scheduler(opts);
  try {
    start_cores(opts, n, cpus);
    dump_signal_acquire(dump_sig);
    dump_signal_ = dump_sig;
  } catch (...) {
    release_all();
    throw;
  }
}

void RunHost::start_cores(const RunOptions& opts, unsigned n, const std::vector<int>& cpus) {
  if (opts.pin && !cpus.empty()) {
    // The calling thread gets its mask back when the run ends (a later run reads it).
    auto* saved = new cpu_set_t;
    if (sched_getaffinity(0, sizeof *saved, saved) == 0) {
      saved_affinity_ = saved;
      pin_to(pthread_self(), cpus[0]);
    } else {
      delete saved;
    }
  }
  if (n <= 1) return;
  auto* h = new GroupHost(n);
  host_ = h;
  group_ = &h->group;
  h->group.scheds.assign(n, nullptr);
  h->group.scheds[0] = sched_;
  sched_->join_group(group_, 0);
  try {
    for (unsigned k = 1; k < n; ++k) {
      const int cpu = opts.pin && !cpus.empty() ? cpus[k % cpus.size()] : -1;
      h->threads.emplace_back([h, k, opts, cpu] { core_thread(h, k, opts, cpu); });
    }
  } catch (...) {
    // Threads that did start are told to stop; the ones that did not never count down.
    for (std::size_t k = h->threads.size() + 1; k < n; ++k) h->started.count_down();
    for (std::size_t k = h->threads.size() + 1; k < n; ++k) h->loops_done.count_down();
    throw;
  }
  h->started.wait();
  std::exception_ptr failed;
  {
    std::lock_guard lock(h->group.error_mu);
    failed = h->group.error;
  }
  if (failed) std::rethrow_exception(failed);  // the caller shuts the others down
}

void RunHost::shutdown(bool abort_run) noexcept {
  auto* h = static_cast<GroupHost*>(host_);
  if (!h) return;
  h->release(abort_run);
  if (abort_run) h->loops_done.count_down();  // core 0 never looped
  for (auto& t : h->threads) t.join();
  delete h;
  host_ = nullptr;
  group_ = nullptr;
}

RunHost::~RunHost() { release_all(); }

void RunHost::release_all() noexcept {
  dump_signal_release(dump_signal_);
  dump_signal_ = 0;
  shutdown(true);
  delete sched_;
  sched_ = nullptr;
  if (auto* saved = static_cast<cpu_set_t*>(saved_affinity_)) {
    pthread_setaffinity_np(pthread_self(), sizeof *saved, saved);
    delete saved;
    saved_affinity_ = nullptr;
  }
}

void RunHost::run(Fiber* main) {
  auto* h = static_cast<GroupHost*>(host_);
  if (!h) {
    sched_->run_main(main);
    return;
  }
  h->group.live.store(1, std::memory_order_relaxed);  // main, before any core can look
  h->group.live_nondaemon.store(1, std::memory_order_relaxed);
  h->release(false);
  std::exception_ptr mine;
  try {
    sched_->run_main(main);
  } catch (...) {
    mine = std::current_exception();
    // The others wait for the counts to reach zero; a failure on core 0 leaves fibers
    // behind, so tell them to give up.
    if (sched_->group() == &h->group) {
      h->group.live.store(0, std::memory_order_relaxed);
      h->group.live_nondaemon.store(0, std::memory_order_relaxed);
      h->group.broadcast();
    }
  }
  if (sched_->group() != &h->group) {
    // A fiber here forked and this is the child: the run was single-core from the fork on
    // (Scheduler::after_fork_child). The other cores' threads are not in this process: none
    // to wait for or join; the host stays as it is, never destroyed (its threads cannot be
    // joined).
    host_ = nullptr;
    group_ = nullptr;
    if (mine) std::rethrow_exception(mine);
    return;
  }
  h->loops_done.arrive_and_wait();
  for (auto& t : h->threads) t.join();
  sched_->join_group(nullptr, 0);  // the group goes now; this scheduler stays until ~RunHost
  std::exception_ptr other;
  {
    std::lock_guard lock(h->group.error_mu);
    other = h->group.error;
  }
  delete h;
  host_ = nullptr;
  group_ = nullptr;
  if (mine) std::rethrow_exception(mine);
  if (other) std::rethrow_exception(other);
}

}  // namespace ringlet::detail
