// Signals and fiber threads: which thread a caught signal is handled for, signals sent to
// one thread (pthread_kill, tgkill, tkill, raise), sigpending, and their delivery.
//
// Every fiber thread of a carrier shares its OS thread, and the kernel delivers to that OS
// thread. Natively a signal sent to the process is handled by a thread that does not block
// it, and one sent to a thread by that thread; its handler runs there (its thread-locals,
// pthread_self), and only that thread's blocking call ends with EINTR. Here:
//   - the carrier's real mask lets through what main or any fiber thread accepts
//     (signal_wait.cpp); when one arrives, the trampoline asks signal_taker who takes it:
//     the interrupted fiber thread if its mask accepts it, else main if main's does (the
//     handler runs at once, counted as that thread's), else it is left for a fiber thread
//     that accepts it, and the parked waits are interrupted: the first such thread to pass a
//     hook (its parked call wakes, or it calls one) takes it;
//   - a signal sent to a fiber thread never reaches the kernel as such: it is marked pending
//     on the thread, which takes it at its next hook (at once if it is the caller), or in
//     sigwait, sigwaitinfo, sigtimedwait while it blocks it;
//   - a thread takes a signal by re-sending it to its own OS thread with the same siginfo
//     (rt_tgsigqueueinfo), marked so that the trampoline runs it for the running thread:
//     the kernel then applies the handler's flags as natively (sa_mask, SA_RESETHAND,
//     SA_NODEFER, SA_ONSTACK, a default action or SIG_IGN set meanwhile).
// A thread's hooks compare its own SignalCounts before and after a wait (EINTR, or a
// restart as SA_RESTART says), so a handler run for one thread interrupts only its call.
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "common.hpp"
#include "internal/dump.hpp"
#include "identity.hpp"

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)  // linux/signal.h's; glibc 2.36's headers leave it out
#endif

namespace ringlet::patch::detail {
namespace {

constexpr std::uint64_t bit(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }
// Signals 1..64 of a sigset_t as bits: glibc keeps them in its first word, signal sig at bit
// sig-1 (the bit() above).
std::uint64_t bits_of(const sigset_t& s) noexcept {
  static_assert(NSIG - 1 <= 64 && sizeof(s.__val[0]) == 8);
  return static_cast<std::uint64_t>(s.__val[0]);
}
int lowest(std::uint64_t b) noexcept { return __builtin_ctzll(b) + 1; }

// The process's: any carrier's handlers and fibers touch them.
std::atomic<std::uint64_t> g_left{0};  // left for a fiber thread that accepts them...
siginfo_t g_left_info[NSIG];           // ...with the kernel's siginfo (written before the bit)
// Sent to main's id (carrier 0's) while main blocks them, or left for main by another
// carrier that took a signal only main accepts: main takes them at its next hook.
std::atomic<std::uint64_t> g_main_pending{0};
// Per carrier, touched on it only: re-sent by take() to its own OS thread, for the running thread.
std::atomic<std::uint64_t> g_resent[ringlet::patch::kMaxCarriers];
std::atomic<std::uint64_t>& resent() noexcept { return g_resent[ringlet::this_core()]; }

// Faults the kernel raises on the instruction that made them: the thread that made it.
bool synchronous(int sig, const siginfo_t* si) noexcept {
  if (si->si_code <= 0) return false;  // sent by a process (SI_USER, SI_QUEUE, SI_TKILL...)
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS;
}

siginfo_t sent_info(int sig) noexcept {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  si.si_signo = sig;
  si.si_code = SI_TKILL;
  si.si_pid = getpid();
  si.si_uid = getuid();
  return si;
}

// Run sig's handler on the calling thread: re-send it to this OS thread, marked for the
// running thread; the kernel delivers it before the call returns (the carrier lets through
// what the caller accepts).
void take(int sig, siginfo_t si) noexcept {
  const int saved = errno;
  resent().fetch_or(bit(sig), std::memory_order_relaxed);
  auto sys = RINGLET_REAL(syscall);  // not ours: ours answers a fiber thread's own id
  const pid_t pid = getpid();
  const long tid = sys(SYS_gettid);
  si.si_signo = sig;
  if (sys(SYS_rt_tgsigqueueinfo, pid, tid, sig, &si) != 0) sys(SYS_tgkill, pid, tid, sig);
  errno = saved;
}

// Dispositions a signal sent to one thread is dropped for (when the thread accepts it).
bool dropped(int sig, const struct sigaction& sa) noexcept {
  if (sa.sa_handler == SIG_IGN) return true;
  return sa.sa_handler == SIG_DFL && (sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH);
}

void forget_after_fork() noexcept {
  // The child starts with no pending signal, the forking thread's own ones included.
  g_left.store(0, std::memory_order_relaxed);
  g_main_pending.store(0, std::memory_order_relaxed);
  for (auto& r : g_resent) r.store(0, std::memory_order_relaxed);
  if (ThreadRec* r = current_rec()) r->sig_pending.store(0, std::memory_order_relaxed);
}

__attribute__((constructor)) void register_fork_handler() { ::pthread_atfork(nullptr, nullptr, &forget_after_fork); }

}  // namespace

bool signal_taker(int sig, const siginfo_t* si, SignalCounts** counts) noexcept {
  ThreadRec* r = current_rec();
  *counts = r ? &r->sig_counts : &carrier_signals();
  const std::uint64_t b = bit(sig);
  if (resent().load(std::memory_order_relaxed) & b) {  // take(): the running thread's
    resent().fetch_and(~b, std::memory_order_relaxed);
    return true;
  }
  if (!thread_masks_on() || synchronous(sig, si) || sig > 64) return true;
  const bool main_here = ringlet::this_core() == 0;
  if (si->si_code == SI_TKILL && main_here) {
    // Sent to carrier 0's id, which is main's (a fiber thread's go through
    // signal_fiber_thread): main's, or pending for main while it blocks it.
    if (main_blocks(sig)) {
      g_main_pending.fetch_or(b, std::memory_order_relaxed);
      return false;
    }
    *counts = &carrier_signals();
    return true;
  }
  // Sent to the process (or to another carrier's OS thread, which no thread of the program
  // owns): the interrupted thread's if it accepts it, else main's, else a fiber thread's.
  if (r ? sigismember(&r->sigmask, sig) != 1 : (main_here && !main_blocks(sig))) return true;
  if (!main_blocks(sig)) {
    if (main_here) {  // main takes it; it runs here, on the interrupted thread's stack
      *counts = &carrier_signals();
      return true;
    }
    // main is on carrier 0: it takes it there, at its next hook (its wait ends now).
    g_main_pending.fetch_or(b, std::memory_order_release);
    ringlet::detail::interrupt_waits_on(0);
    return false;
  }
  if (threads_accepting(sig) == 0) return true;  // nobody accepts it: a mask changed meanwhile
  g_left_info[sig] = *si;
  g_left.fetch_or(b, std::memory_order_release);
  ringlet::detail::interrupt_waits_everywhere();  // the thread that accepts it may be on any carrier
  return false;
}

void deliver_pending(ThreadRec* r) noexcept {
  for (;;) {
    const std::uint64_t accepts = ~bits_of(r->sigmask);
    const std::uint64_t own = r->sig_pending.load(std::memory_order_acquire) & accepts;
    const std::uint64_t left = g_left.load(std::memory_order_acquire) & accepts;
    if (own) {
      const int sig = lowest(own);
      r->sig_pending.fetch_and(~bit(sig), std::memory_order_relaxed);
      take(sig, sent_info(sig));
    } else if (left) {
      const int sig = lowest(left);
      const siginfo_t info = g_left_info[sig];
      // Another carrier's thread may take it first: only the one that clears the bit does.
      if (g_left.fetch_and(~bit(sig), std::memory_order_acq_rel) & bit(sig)) take(sig, info);
    } else {
      return;
    }
  }
}

void deliver_main_pending(const sigset_t& main_mask) noexcept {
  std::uint64_t now;
  while ((now = g_main_pending.load(std::memory_order_relaxed) & ~bits_of(main_mask)) != 0) {
    const int sig = lowest(now);
    g_main_pending.fetch_and(~bit(sig), std::memory_order_relaxed);
    take(sig, sent_info(sig));
  }
}

SignalCounts& thread_signals() noexcept {
  if (ThreadRec* r = current_rec()) {
    if (RINGLET_UNLIKELY(r->sig_pending.load(std::memory_order_relaxed) != 0 ||
                         g_left.load(std::memory_order_relaxed) != 0))
      deliver_pending(r);
    return r->sig_counts;
  }
  // main: what another carrier left for it (or sent to it while it blocked it) and its mask
  // now accepts.
  if (RINGLET_UNLIKELY(g_main_pending.load(std::memory_order_relaxed) != 0) && thread_masks_on() &&
      ringlet::this_core() == 0)
    deliver_main_pending(main_mask_now());
  return carrier_signals();
}

int take_own_pending(const sigset_t& set, siginfo_t* info) noexcept {
  const std::uint64_t want = bits_of(set);
  int sig = 0;
  if (ThreadRec* r = current_rec()) {
    const std::uint64_t p = r->sig_pending.load(std::memory_order_acquire) & want;
    if (!p) return 0;
    sig = lowest(p);
    r->sig_pending.fetch_and(~bit(sig), std::memory_order_relaxed);
  } else {
    const std::uint64_t p = g_main_pending.load(std::memory_order_relaxed) & want;
    if (!p) return 0;
    sig = lowest(p);
    g_main_pending.fetch_and(~bit(sig), std::memory_order_relaxed);
  }
  if (info) *info = sent_info(sig);
  return sig;
}

int signal_fiber_thread(ThreadRec* t, int sig) noexcept {
  if (sig < 0 || sig >= NSIG) return EINVAL;
  if (t->done) return ESRCH;
  if (sig == 0) return 0;
  Scheduler* s = Scheduler::current();
  const bool here = s && s->running();
  if (sig > 64 || !here || !thread_masks_on()) {
    // From a plain thread (or a signal past 64): to the OS thread that carries it.
    return RINGLET_REAL(pthread_kill)(t->carrier ? t->carrier : RINGLET_REAL(pthread_self)(), sig);
  }
  if (sigismember(&t->sigmask, sig) != 1) {
    struct sigaction sa {};
    RINGLET_REAL(sigaction)(sig, nullptr, &sa);
    if (dropped(sig, sa)) return 0;
    // A default action (end, stop, core) acts on the whole process: as the kernel's; so does
    // the runtime's fiber dump (RINGLET_DUMP_SIGNAL), which stands in for SIG_DFL.
    if (sa.sa_handler == SIG_DFL || ringlet::detail::is_dump_signal_handler(sa)) return RINGLET_REAL(pthread_kill)(RINGLET_REAL(pthread_self)(), sig);
  }
  t->sig_pending.fetch_or(bit(sig), std::memory_order_release);
  if (t == current_rec()) deliver_pending(t);  // before pthread_kill returns, as natively
  else ringlet::detail::interrupt_waits_on(t->carrier_index);  // parked: its hook takes it when it wakes
  return 0;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

// A fiber thread's raise is a signal to itself; main's goes to the carrier (SI_TKILL: main's).
RINGLET_HOOK int raise(int sig) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) {
    if (const int e = signal_fiber_thread(r, sig)) {
      errno = e;
      return -1;
    }
    return 0;
  }
  return RINGLET_REAL(raise)(sig);
}

// A fiber thread's alternate signal stack is its own bookkeeping, answered back to it: the
// kernel knows one per OS thread, which main (or ringlet's fault handler) owns, and a thread
// that ends and frees its stack must not leave the carrier pointing at freed memory.
// Handlers with SA_ONSTACK run on the OS thread's alternate stack.
// (TSan's start-up calls it: RINGLET_TSAN_EARLY.)
RINGLET_HOOK RINGLET_NO_TSAN int sigaltstack(const stack_t* ss, stack_t* old) {
  RINGLET_TSAN_EARLY(sigaltstack, ss, old);
  ThreadRec* r = current_rec();
  if (RINGLET_LIKELY(r == nullptr)) return RINGLET_REAL(sigaltstack)(ss, old);
  stack_t cur = r->altstack;
  const char* sp = static_cast<const char*>(__builtin_frame_address(0));
  const bool on_it = !(cur.ss_flags & SS_DISABLE) && sp >= static_cast<const char*>(cur.ss_sp) &&
                     sp < static_cast<const char*>(cur.ss_sp) + cur.ss_size;
  if (ss) {
    if (on_it) {
      errno = EPERM;
      return -1;
    }
    const int mode = ss->ss_flags & ~static_cast<int>(SS_AUTODISARM);
    if (mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK) {
      errno = EINVAL;
      return -1;
    }
    if (mode == SS_DISABLE) {
      r->altstack = stack_t{nullptr, SS_DISABLE, 0};
    } else {
      if (ss->ss_size < static_cast<std::size_t>(MINSIGSTKSZ)) {
        errno = ENOMEM;
        return -1;
      }
      r->altstack = *ss;
      r->altstack.ss_flags = ss->ss_flags & static_cast<int>(SS_AUTODISARM);
    }
  }
  if (old) {
    *old = cur;
    if (on_it) old->ss_flags = SS_ONSTACK | (cur.ss_flags & static_cast<int>(SS_AUTODISARM));
  }
  return 0;
}

// A process started with posix_spawn inherits the signal mask of the thread that starts it.
// The OS thread's real mask is not that thread's (it lets through what any thread accepts),
// so unless the program set the child's mask itself, it is set to the caller's.
namespace {
const posix_spawnattr_t* with_callers_mask(const posix_spawnattr_t* attr, posix_spawnattr_t* mine) noexcept {
  if (!thread_masks_on() || !Scheduler::current()) return attr;
  short flags = 0;
  if (attr) {
    if (posix_spawnattr_getflags(attr, &flags) != 0 || (flags & POSIX_SPAWN_SETSIGMASK)) return attr;
    *mine = *attr;
  } else if (posix_spawnattr_init(mine) != 0) {
    return attr;
  }
  sigset_t m;
  pthread_sigmask(SIG_BLOCK, nullptr, &m);  // the hook: the calling thread's own mask
  posix_spawnattr_setsigmask(mine, &m);
  posix_spawnattr_setflags(mine, static_cast<short>(flags | POSIX_SPAWN_SETSIGMASK));
  return mine;
}
}  // namespace

RINGLET_HOOK int posix_spawn(pid_t* pid, const char* path, const posix_spawn_file_actions_t* fa,
                             const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  posix_spawnattr_t mine;
  fd_share_epoch_advance();  // the child may share descriptors (state.hpp)
  const int r = RINGLET_REAL(posix_spawn)(pid, path, fa, with_callers_mask(attr, &mine), argv, envp);
  fd_share_epoch_advance();
  return r;
}

RINGLET_HOOK int posix_spawnp(pid_t* pid, const char* file, const posix_spawn_file_actions_t* fa,
                              const posix_spawnattr_t* attr, char* const argv[], char* const envp[]) {
  posix_spawnattr_t mine;
  fd_share_epoch_advance();  // the child may share descriptors (state.hpp)
  const int r = RINGLET_REAL(posix_spawnp)(pid, file, fa, with_callers_mask(attr, &mine), argv, envp);
  fd_share_epoch_advance();
  return r;
}

RINGLET_HOOK int sigpending(sigset_t* set) {
  const int r = RINGLET_REAL(sigpending)(set);
  if (r != 0 || !thread_masks_on() || !Scheduler::current()) return r;
  std::uint64_t own;
  if (ThreadRec* t = current_rec()) own = t->sig_pending.load(std::memory_order_relaxed);
  else own = g_main_pending.load(std::memory_order_relaxed);
  for (int sig = 1; sig < NSIG && sig <= 64; ++sig)
    if (own & bit(sig)) sigaddset(set, sig);
  return 0;
}
