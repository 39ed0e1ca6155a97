// Deadlock detection: when every fiber is parked and nothing can wake one, say who waits on
// what, hand the error to main (or kill them all), and let run() throw.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "internal/scheduler.hpp"
#include "internal/sys.hpp"
#include "ringlet/fiber.hpp"

namespace ringlet::detail {

namespace {
// Threads in this process (from /proc; called only when the loop would block forever).
long process_threads() noexcept {
  FILE* f = std::fopen("/proc/self/stat", "r");
  if (!f) return 2;  // unknown: assume others exist
  long n = 2;
  // Field 20 is num_threads; field 2 (comm) may hold spaces but ends at the last ')'.
  char buf[1024];
  std::size_t len = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[len] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p && std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld", &n) != 1)
    n = 2;
  return n;
}
}  // namespace

void Scheduler::throw_if_deadlocked() {
  if (!deadlock_killed_ && live_ == 0) return;
  if (live_ != 0)
    deadlock_report_ += "\n  (" + std::to_string(live_) +
                        " fiber(s) ignored GreenletExit and were left behind)";
  throw DeadlockError(deadlock_report_);
}

// A single scheduler (a run of one core; a group's cores use run_deadlock_check below).
bool Scheduler::all_stuck() const noexcept {
  if (ready_head_ || !timers_.empty() || reactor_->in_flight() != 0 ||
      remote_posted(std::memory_order_acquire) ||
      remote_expected_.load(std::memory_order_acquire) != 0)
    return false;
  // A fiber parked on a Lock, Event, Queue... may still be woken by another thread, unless
  // the only other threads are ringlet's own that never touch user primitives.
  return primitive_waits_ == 0 ||
         process_threads() - quiet_threads.load(std::memory_order_relaxed) <= 1;
}

std::string Scheduler::describe_waits(bool core) const {
  std::string report;
  for (const Fiber* f = all_head_; f; f = st(f).all_next) {
    report += "\n  fiber '" + f->display_name() + "' (#" + std::to_string(f->id) + ") ";
    if (st(f).status == FiberStatus::Parked && st(f).waiting) {
      const WaitInfo& w = *st(f).waiting;
      report += "waits in ";
      report += w.what ? w.what : "an unnamed wait";
      if (w.target) {
        report += " of fiber '" + w.target->display_name() + "' (#" + std::to_string(w.target->id);
        const Scheduler* there = st(w.target).sched;
        if (core && there && there != this) report += ", core " + std::to_string(there->core_);
        report += ")";
      }
    } else {
      report += "is not parked";
    }
    if (core) report += " (core " + std::to_string(core_) + ")";  // ids repeat across cores
  }
  return report;
}

// With RunOptions::deadlock_waits (ringlet-run): the program stays as it would natively,
// blocked, at 0 % CPU; the deadlock is never silent: said once on stderr (again only if the
// fibers ran in between). RINGLET_DEADLOCK=abort aborts instead (a core dump to look at).
void Scheduler::say_deadlock(const std::string& waits) {
  const char* mode = std::getenv("RINGLET_DEADLOCK");
  const bool abort_now = mode && std::strcmp(mode, "abort") == 0;
  std::string report =
      "ringlet: deadlock: every thread waits and nothing can wake one:" + waits + "\n";
  if (abort_now) report += "ringlet: RINGLET_DEADLOCK=abort: aborting\n";
  else if (mode && *mode) report += std::string("ringlet: RINGLET_DEADLOCK='") + mode + "' is not 'abort'; ignored\n";
  if (!abort_now) report += "ringlet: the program stays blocked, as it would natively (RINGLET_DEADLOCK=abort aborts instead)\n";
  (void)sys::write(2, report.data(), report.size());
  if (abort_now) std::abort();
}

// Every fiber is parked and nothing can wake one. Say who waits on what; hand the error to
// the main fiber if it is among them (it may handle it), else kill them all and let run()
// throw. A second deadlock among fibers already killed ends the loop.
void Scheduler::break_deadlock() {
  deadlock_report_ =
      "ringlet: deadlock: every fiber is parked and nothing can wake them "
      "(this operation would block forever):" + describe_waits();
  if (main_ && !main_done_ && st(main_).status == FiberStatus::Parked && st(main_).interruptible) {
    wake(main_, st(main_).park_token, WakeReason::Deadlock);
    return;
  }
  for (Fiber* f = all_head_; f; f = st(f).all_next) {
    if (st(f).status != FiberStatus::Parked || !st(f).interruptible) continue;
    if (st(f).kill_sent) continue;  // killed already and stuck again: left behind
    deadlock_killed_ = true;
    st(f).kill_sent = true;
    st(f).kill_pending = true;
    wake(f, st(f).park_token, WakeReason::Killed);
  }
}

// --- a multi-core run (a CoreGroup): the deadlock is the whole run's ---
//
// A core alone cannot tell: a fiber of another core may yet wake one of its own (a join, a
// Lock, an Event, a Queue shared between cores). So each core that finds itself quiet says
// so, and then looks at every core; the run is deadlocked when every core is quiet at once
// with nothing posted to any. "At once" is the hard part: the cores are looked at one after
// another, and a core looked at early may have been posted to, and woken, by one looked at
// later, which was still running then. Every core's run_quiet_seq_ moves whenever its state
// may have changed after it said it was quiet: it takes its word back (leave_run_quiet, at
// the top of every pass, before anything else), or something is posted to it while it says
// it is quiet (note_post, after the post is visible). The detector reads the sum of every
// core's sequence, looks at every core, and reads the sum again: if it has not moved, no
// core changed in between, and what it saw holds at one instant (the second read). Why a
// post by a core looked at later is seen: the poster was running when it posted, so it said
// it was quiet only after its post, whose note_post (the target said it was quiet when the
// detector looked at it) moved the target's sequence after the first read and before the
// second. The declaration and the post are a seq_cst pair: the core says it is quiet, then
// looks at its inbox; a poster makes its post visible, then looks at the word: either the core
// sees the post (and takes its word back) or the poster sees the word (and moves the
// sequence).
//
// Quiet: every fiber parked (or none), no timer, no I/O in flight, no wake owed by a thread
// outside the run (WaitSpec::remote: a thread-pool job, the patch's helper). The run's
// counts wake the loops without a post (CoreGroup::broadcast): a run with no non-daemon
// fiber left is ending, never deadlocked. Joins and
// primitives between cores are the run's own. A wait that any thread may end (a primitive)
// counts as single-core does: only if the process has no thread besides the cores and
// ringlet's quiet ones. With deadlock_waits, a wait a signal handler may end is no deadlock.
//
// What the detector reads of other cores' fibers (for the report, and whether main can take
// the error) was written before their word (release/acquire through run_quiet_), and
// nothing writes it while every core is quiet; what the break changes, each core changes
// itself, on its own loop (a posted call), after the report is written.

namespace {
constexpr int kRunCheckTries = 64;  // consistent looks tried while the sequences move
// ThreadSanitizer's own background thread, started with a process's second thread (so in
// every multi-core run): it never touches a user primitive.
#if defined(__SANITIZE_THREAD__)
constexpr long kSanitizerThreads = 1;
#else
constexpr long kSanitizerThreads = 0;
#endif
}

bool Scheduler::run_deadlock_check() {
  // This core's own part: all but its inbox only change on this thread.
  if (ready_head_ || !timers_.empty() || reactor_->in_flight() != 0 ||
      remote_expected_.load(std::memory_order_acquire) != 0)
    return false;
  if (!quiet_declared_) {
    quiet_primitive_.store(primitive_waits_, std::memory_order_relaxed);
    quiet_signal_.store(signal_waits_, std::memory_order_relaxed);
    quiet_declared_ = true;
    run_quiet_.store(true, std::memory_order_seq_cst);
    if (remote_posted(std::memory_order_seq_cst)) return true;  // taken back at the top
  }
  CoreGroup& g = *group_;
  auto seq_sum = [&g] {
    std::uint64_t sum = 0;
    for (Scheduler* s : g.scheds) sum += s->run_quiet_seq_.load(std::memory_order_seq_cst);
    return sum;
  };
  std::lock_guard<SpinLock> lock(g.deadlock_mu);
  std::size_t primitive = 0, by_signal = 0;
  bool consistent = false;
  for (int i = 0; i < kRunCheckTries && !consistent; ++i) {
    const std::uint64_t before = seq_sum();
    primitive = by_signal = 0;
    for (Scheduler* s : g.scheds) {
      if (!s->run_quiet_.load(std::memory_order_seq_cst) || s->remote_posted(std::memory_order_seq_cst))
        return false;  // a core at work, or work on its way to one
      primitive += s->quiet_primitive_.load(std::memory_order_relaxed);
      by_signal += s->quiet_signal_.load(std::memory_order_relaxed);
    }
    consistent = seq_sum() == before;
  }
  if (!consistent) return false;  // still moving after many looks: not quiet
  // Every non-daemon fiber has finished: the run is ending, and a core that has not woken
  // to the broadcast yet (a wake that is no post) is about to kill its daemons.
  if (g.live_nondaemon.load(std::memory_order_acquire) == 0) return false;
  if (primitive != 0 && process_threads() - quiet_threads.load(std::memory_order_relaxed) - kSanitizerThreads >
                            static_cast<long>(g.scheds.size()))
    return false;  // a thread outside the run may notify a primitive
  std::string waits;
  for (Scheduler* s : g.scheds) waits += s->describe_waits(/*core=*/true);
  if (deadlock_waits_) {
    if (by_signal != 0) return false;
    std::uint64_t switches = 0;
    for (Scheduler* s : g.scheds) switches += s->switches_.load(std::memory_order_relaxed);
    if (g.deadlock_said_at == switches) return false;  // said already; nothing ran since
    g.deadlock_said_at = switches;
    say_deadlock(waits);
    return false;
  }
  // Break it as a single core does: the error to main if it is parked where it can take
  // it, else a kill to every parked fiber; if every one was killed already, every loop ends.
  const std::string report =
      "ringlet: deadlock: every fiber is parked and nothing can wake them "
      "(this operation would block forever):" + waits;
  Scheduler* core0 = g.scheds[0];
  Fiber* m = core0->main_;
  if (m && !core0->main_done_ && st(m).status == FiberStatus::Parked && st(m).interruptible) {
    const std::uint64_t token = st(m).park_token;
    core0->post_call([core0, m, token, report] {
      core0->deadlock_report_ = report;
      wake(m, token, WakeReason::Deadlock);
    });
    return true;
  }
  bool killable = false;
  for (Scheduler* s : g.scheds)
    for (const Fiber* f = s->all_head_; f && !killable; f = st(f).all_next)
      killable = st(f).status == FiberStatus::Parked && st(f).interruptible && !st(f).kill_sent;
  for (Scheduler* s : g.scheds) {
    if (killable) {
      s->post_call([s, report] { s->break_run_deadlock(report); });
    } else {
      s->post_call([s, report] {
        s->deadlock_report_ = report;
        s->leave_loop_ = true;
      });
    }
  }
  return true;
}

void Scheduler::break_run_deadlock(const std::string& report) {
  deadlock_report_ = report;
  for (Fiber* f = all_head_; f; f = st(f).all_next) {
    if (st(f).status != FiberStatus::Parked || !st(f).interruptible || st(f).kill_sent) continue;
    deadlock_killed_ = true;
    st(f).kill_sent = true;
    st(f).kill_pending = true;
    wake(f, st(f).park_token, WakeReason::Killed);
  }
}

}  // namespace ringlet::detail
