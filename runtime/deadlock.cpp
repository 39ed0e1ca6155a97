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

bool Scheduler::all_stuck() const noexcept {
  if (group_ && live_ == 0) return false;  // a core with nothing to do waits for spawn_on
  if (ready_head_ || !timers_.empty() || reactor_->in_flight() != 0 ||
      remote_posted(std::memory_order_acquire) ||
      remote_expected_.load(std::memory_order_acquire) != 0)
    return false;
  // A fiber parked on a Lock, Event, Queue... may still be woken by another thread, unless
  // the only other threads are ringlet's own that never touch user primitives.
  // (In a group the other cores are such threads: no need to count.)
  return primitive_waits_ == 0 ||
         (!group_ && process_threads() - quiet_threads.load(std::memory_order_relaxed) <= 1);
}

std::string Scheduler::describe_waits() const {
  std::string report;
  for (const Fiber* f = all_head_; f; f = st(f).all_next) {
    report += "\n  fiber '" + f->display_name() + "' (#" + std::to_string(f->id) + ") ";
    if (st(f).status == FiberStatus::Parked && st(f).waiting) {
      const WaitInfo& w = *st(f).waiting;
      report += "waits in ";
      report += w.what ? w.what : "an unnamed wait";
      if (w.target)
        report += " of fiber '" + w.target->display_name() + "' (#" + std::to_string(w.target->id) + ")";
    } else {
      report += "is not parked";
    }
  }
  return report;
}

// With RunOptions::deadlock_waits (ringlet-run): the program stays as it would natively,
// blocked, at 0 % CPU; the deadlock is never silent: said once on stderr (again only if the
// fibers ran in between). RINGLET_DEADLOCK=abort aborts instead (a core dump to look at).
void Scheduler::say_deadlock() {
  deadlock_said_at_ = switches_.load(std::memory_order_relaxed);
  const char* mode = std::getenv("RINGLET_DEADLOCK");
  const bool abort_now = mode && std::strcmp(mode, "abort") == 0;
  std::string report =
      "ringlet: deadlock: every thread waits and nothing can wake one:" + describe_waits() + "\n";
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

}  // namespace ringlet::detail
