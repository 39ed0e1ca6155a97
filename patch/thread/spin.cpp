// Spinlocks: glibc's own, but a fiber that finds one held lets the others run.
#include <pthread.h>

#include "common.hpp"

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- spinlocks ---------------------------------------------------------------------------

// glibc's representation; a fiber that finds one held lets the others run (the holder may
// be a fiber of this very thread, parked) instead of spinning its thread away.
RINGLET_HOOK int pthread_spin_lock(pthread_spinlock_t* l) {
  if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
  Here h = on_fiber(Thread);
  if (!h) return RINGLET_REAL(pthread_spin_lock)(l);
  for (int i = 0;; ++i) {
    if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
    if (i < 100) __builtin_ia32_pause();
    else if (i < 200) h.s->yield_nothrow();
    else timed_sleep(h, deadline_after_ns(50'000));
  }
}
