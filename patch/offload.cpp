// Blocking calls moved to helper OS threads while the fiber parks (offload.hpp), and the
// hooks that use them for files: flock, fcntl's F_SETLKW/F_OFD_SETLKW (dispatched from
// fd.cpp's fcntl hook), lockf(F_LOCK), and open/openat of a FIFO without O_NONBLOCK.
//
// Each first makes the call that cannot block (LOCK_NB, F_SETLK, F_TLOCK); only when that
// answers "held elsewhere" does the real blocking call go to a helper. A FIFO's open has no
// such probe (O_NONBLOCK changes what a read-only open means), so every blocking open of a
// FIFO on a fiber goes to a helper; other opens pay one fstatat to tell.
//
// The pool: helpers are made on demand, each serves one call at a time, and an idle one
// stays 10 s for the next call, then ends. They block every signal but kHelperSignal.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <mutex>
#include <new>

#include "internal/fiber_state.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"
#include "offload.hpp"
#include "thread/common.hpp"

namespace ringlet::patch::detail {
namespace {

using ringlet::detail::SpinLock;
using ringlet::detail::WaitLock;
using ringlet::detail::WaitSpec;

constexpr std::int64_t kIdleNs = 10'000'000'000;  // an idle helper's life
constexpr std::int64_t kKickNs = 2'000'000;       // between two signals to a helper asked to stop

int helper_signal() noexcept { return SIGRTMAX - 2; }

void on_helper_signal(int) {}  // its only purpose: make the helper's call return EINTR

struct Helper {
  std::atomic<std::uint32_t> word{0};  // bumped when a job is handed over
  OffloadJob* job = nullptr;           // under g_pool_mu
  Helper* next = nullptr;
};

SpinLock g_pool_mu;
Helper* g_idle = nullptr;  // under g_pool_mu
long g_live = 0;           // helpers alive, under g_pool_mu
std::once_flag g_setup_once;

void after_fork_child() noexcept {
  // The helpers are gone in the child (fork keeps its caller only); their records leak.
  new (&g_pool_mu) SpinLock();
  g_idle = nullptr;
  ringlet::detail::quiet_threads.fetch_sub(g_live, std::memory_order_relaxed);
  g_live = 0;
}

void install_handler() noexcept {
  struct sigaction sa {};
  sa.sa_handler = &on_helper_signal;
  sa.sa_flags = 0;  // no SA_RESTART: the helper's call returns EINTR
  sigfillset(&sa.sa_mask);
  RINGLET_REAL(sigaction)(helper_signal(), &sa, nullptr);
}

void setup() noexcept {
  install_handler();
  ::pthread_atfork(nullptr, nullptr, &after_fork_child);
}

// Before a helper is signalled: the program may have set the signal's disposition since
// (SIG_DFL would end the process). Ours is put back, and that said once.
void ensure_handler() noexcept {
  struct sigaction cur {};
  if (RINGLET_REAL(sigaction)(helper_signal(), nullptr, &cur) != 0) return;
  if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == &on_helper_signal) return;
  install_handler();
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    const char msg[] =
        "ringlet patch: the program changed the disposition of SIGRTMAX-2, which the patch uses to "
        "interrupt its helper threads (file locks, FIFO opens, process-shared waits); the patch's "
        "handler was put back\n";
    ringlet::detail::sys::write(2, msg, sizeof msg - 1);
  }
}

void run_job(OffloadJob& j) noexcept {
  {
    WaitLock lk(j.mu);
    j.helper = ::pthread_self();
    j.started = true;
  }
  for (;;) {
    if (j.cancel.load(std::memory_order_acquire)) {
      j.res = -1;
      j.err = EINTR;
      break;
    }
    errno = 0;
    j.res = j.run(j);
    // EINTR that the fiber did not ask for (a late internal signal): make it again.
    if (!(j.res == -1 && j.err == EINTR) || j.cancel.load(std::memory_order_acquire)) break;
  }
  WaitLock lk(j.mu);
  j.done = true;
  j.waiters.grant_all();
  // j may be gone once the lock is let go.
}

void* helper_main(void* arg) {
  auto* h = static_cast<Helper*>(arg);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, helper_signal());
  ::pthread_sigmask(SIG_UNBLOCK, &only, nullptr);  // everything else stays blocked
  for (;;) {
    OffloadJob* j;
    {
      WaitLock lk(g_pool_mu);
      j = h->job;
    }
    run_job(*j);
    {
      WaitLock lk(g_pool_mu);
      h->job = nullptr;
      h->next = g_idle;
      g_idle = h;
    }
    const Deadline until = deadline_after_ns(kIdleNs);
    for (;;) {
      std::uint32_t seen;
      {
        WaitLock lk(g_pool_mu);
        if (h->job) break;
        seen = h->word.load(std::memory_order_acquire);
        if (until.passed()) {  // retire: off the idle list, then gone
          for (Helper** p = &g_idle; *p; p = &(*p)->next)
            if (*p == h) {
              *p = h->next;
              break;
            }
          --g_live;
          ringlet::detail::quiet_threads.fetch_sub(1, std::memory_order_relaxed);
          lk.unlock();
          delete h;
          return nullptr;
        }
      }
      futex_wait_until(&h->word, seen, until);
    }
  }
}

// A new helper for j: every signal blocked while it is made, so none reaches it before it
// has set its own mask.
bool start_helper(OffloadJob& j) noexcept {
  auto* h = new (std::nothrow) Helper;
  if (!h) return false;
  h->job = &j;
  // A helper never wakes a program's primitive (its one wake is the fiber it serves, owed
  // as a remote wake): it does not make a parked fiber's wait possibly-not-a-deadlock.
  {
    WaitLock lk(g_pool_mu);
    ++g_live;
  }
  ringlet::detail::quiet_threads.fetch_add(1, std::memory_order_relaxed);
  pthread_attr_t attr;
  ::pthread_attr_init(&attr);
  ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  ::pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, _NSIG / 8);
  pthread_t t;
  const int e = RINGLET_REAL(pthread_create)(&t, &attr, &helper_main, h);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
  ::pthread_attr_destroy(&attr);
  if (e != 0) {
    {
      WaitLock lk(g_pool_mu);
      --g_live;
    }
    ringlet::detail::quiet_threads.fetch_sub(1, std::memory_order_relaxed);
    delete h;
    return false;
  }
  return true;
}

}  // namespace

bool offload_submit(OffloadJob& j) noexcept {
  std::call_once(g_setup_once, setup);
  Helper* h = nullptr;
  {
    WaitLock lk(g_pool_mu);
    if ((h = g_idle)) {
      g_idle = h->next;
      h->job = &j;
    }
  }
  if (!h) return start_helper(j);
  h->word.fetch_add(1, std::memory_order_release);
  futex_wake(&h->word, 1);
  return true;
}

Woke poll_pause(std::int64_t ns, bool interruptible) noexcept {
  ringlet::detail::Waiter w;
  w.arm();
  WaitSpec spec;
  spec.what = "bounded poll (patched)";
  spec.kind = ringlet::detail::WaitKind::Sleep;  // a pause between two looks
  spec.deadline = deadline_after_ns(ns);
  spec.interruptible = interruptible;
  if (!interruptible) return ringlet::detail::wait(w, spec);
  ringlet::detail::InterruptScope scope;
  return ringlet::detail::wait(w, spec);
}

void offload_wait(OffloadJob& j, OffloadMode mode, const char* what) noexcept {
  const SignalCounts at = thread_signals();
  int reason = 0;
  WaitLock lk(j.mu);
  while (!j.done) {
    ringlet::detail::Waiter w;
    w.arm();
    j.waiters.push(&w);
    WaitSpec spec;
    spec.what = what;
    spec.remote = true;  // the helper owes the wake: never a deadlock
    spec.interruptible = mode != OffloadMode::Uninterruptible;
    Woke r;
    if (spec.interruptible) {
      ringlet::detail::InterruptScope scope;
      r = ringlet::detail::wait_in(lk, j.waiters, w, spec);
    } else {
      r = ringlet::detail::wait_in(lk, j.waiters, w, spec);
    }
    if (j.done || r == Woke::Notified || r == Woke::Deadlock) continue;
    if (r == Woke::Interrupted) {
      const SignalCounts now = thread_signals();
      if (now.all == at.all) continue;  // no handler ran since the call began
      if (mode == OffloadMode::Restartable && now.no_restart == at.no_restart) continue;  // SA_RESTART
      reason = EINTR;
    } else {
      reason = woke_errno(r);  // a kill: EINTR; an enclosing Timeout: ETIMEDOUT
    }
    // End the helper's call: it returns EINTR unless it had already succeeded. Signalled
    // again until it is back, in case the first signal came before it entered the call.
    j.cancel.store(true, std::memory_order_release);
    while (!j.done) {
      if (j.started) {
        ensure_handler();
        RINGLET_REAL(pthread_kill)(j.helper, helper_signal());
      }
      ringlet::detail::Waiter w2;
      w2.arm();
      j.waiters.push(&w2);
      WaitSpec again;
      again.what = what;
      again.remote = true;
      again.interruptible = false;
      again.deadline = deadline_after_ns(kKickNs);
      (void)ringlet::detail::wait_in(lk, j.waiters, w2, again);
    }
  }
  if (reason && j.res == -1 && j.err == EINTR) j.err = reason;
  // The call succeeded although a kill ended the wait: it stands (the lock is held, the
  // descriptor open), so the kill ended nothing a cancellation point should act on.
  if (reason && j.res != -1) (void)ringlet::detail::take_kill_wake();
}

namespace {
struct Holder {
  const void* obj;
  const void* who;
};
constexpr int kHolders = 256;
SpinLock g_holders_mu;
Holder g_holders[kHolders];  // under g_holders_mu; obj null = free
}  // namespace

const void* held_by(const void* obj) noexcept {
  WaitLock lk(g_holders_mu);
  for (const Holder& h : g_holders)
    if (h.obj == obj) return h.who;
  return nullptr;
}

bool note_holder(const void* obj, const void* who) noexcept {
  WaitLock lk(g_holders_mu);
  Holder* free_slot = nullptr;
  for (Holder& h : g_holders) {
    if (h.obj == obj) {
      h.who = who;
      return true;
    }
    if (!h.obj && !free_slot) free_slot = &h;
  }
  if (!free_slot) return false;
  *free_slot = {obj, who};
  return true;
}

void forget_holder(const void* obj) noexcept {
  WaitLock lk(g_holders_mu);
  for (Holder& h : g_holders)
    if (h.obj == obj) h = {nullptr, nullptr};
}

}  // namespace ringlet::patch::detail
