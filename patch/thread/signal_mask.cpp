// Signal masks: a fiber thread's pthread_sigmask/sigprocmask is its own bookkeeping.
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "common.hpp"

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// A fiber thread's signal mask is its own bookkeeping, answered back to it, and not applied
// to the OS thread as such: that thread carries every fiber, main included, and a helper
// "thread" that blocks every signal (the usual way to leave them to main) must not block
// them for main too. The carrier lets through what main or any fiber thread accepts
// (signal_wait.cpp), and a signal is handled for a thread that accepts it
// (signal_route.cpp). One the change unblocks that was sent to the thread, or left for it,
// runs its handler before this returns, as natively.
static int fiber_sigmask(ThreadRec* r, int how, const sigset_t* set, sigset_t* old) noexcept {
  if (old) *old = r->sigmask;
  if (!set) return 0;
  sigset_t m = r->sigmask;
  switch (how) {
    case SIG_BLOCK:
      sigorset(&m, &m, set);
      break;
    case SIG_UNBLOCK:
      for (int sig = 1; sig < NSIG; ++sig)
        if (sigismember(set, sig) == 1) sigdelset(&m, sig);
      break;
    case SIG_SETMASK:
      m = *set;
      break;
    default:
      return EINVAL;
  }
  // What cannot be blocked stays unblocked, as the kernel leaves it.
  sigdelset(&m, SIGKILL);
  sigdelset(&m, SIGSTOP);
  set_thread_mask(r, m);
  deliver_pending(r);
  return 0;
}

RINGLET_HOOK int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) return fiber_sigmask(r, how, set, old);
  // main while fibers wait for signals: its own mask, combined with the waits' (signal_wait.cpp)
  if (RINGLET_UNLIKELY(g_mask_waits.load(std::memory_order_relaxed) != 0)) return carrier_sigmask(how, set, old);
  return RINGLET_REAL(pthread_sigmask)(how, set, old);
}

RINGLET_HOOK int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) {
    const int e = fiber_sigmask(r, how, set, old);
    if (e) {
      errno = e;
      return -1;
    }
    return 0;
  }
  if (RINGLET_UNLIKELY(g_mask_waits.load(std::memory_order_relaxed) != 0)) {
    if (const int e = carrier_sigmask(how, set, old)) {
      errno = e;
      return -1;
    }
    return 0;
  }
  return RINGLET_REAL(sigprocmask)(how, set, old);
}
