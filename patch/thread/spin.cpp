// Spinlocks: glibc's own, but a fiber that finds one held lets the others run.
#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "common.hpp"

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

namespace {
// Fibers parked on some spinlock: an unlock looks at the futex table only while there are.
std::atomic<int> g_spin_parked{0};
}  // namespace

// --- spinlocks ---------------------------------------------------------------------------

// glibc's representation; a fiber that finds one held spins briefly, lets the others run
// (the holder may be a fiber of this very thread, parked), and then parks on the lock's
// address in the fibers' futex table, where pthread_spin_unlock wakes it. An unlock that does
// not come through here (glibc-internal) is caught by bounding each park at 1 ms.
RINGLET_HOOK int pthread_spin_lock(pthread_spinlock_t* l) {
  if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
  Here h = on_fiber(Thread);
  if (!h) return RINGLET_REAL(pthread_spin_lock)(l);
  for (int i = 0;; ++i) {
    if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
    if (i < 100) {
      __builtin_ia32_pause();
    } else if (i < 200) {
      h.s->yield_nothrow();
    } else {
      auto* word = reinterpret_cast<std::uint32_t*>(const_cast<int*>(l));
      const std::uint32_t held = __atomic_load_n(word, __ATOMIC_SEQ_CST);
      if (held == 0) continue;
      g_spin_parked.fetch_add(1, std::memory_order_seq_cst);  // seen by an unlock after its store
      futex_wait_fiber(word, held, deadline_after_ns(1'000'000), "pthread_spin_lock (patched)");
      g_spin_parked.fetch_sub(1, std::memory_order_relaxed);
    }
  }
}

RINGLET_HOOK int pthread_spin_unlock(pthread_spinlock_t* l) {
  __atomic_store_n(const_cast<int*>(l), 0, __ATOMIC_SEQ_CST);
  if (RINGLET_UNLIKELY(g_spin_parked.load(std::memory_order_seq_cst) > 0))
    futex_wake_fibers(const_cast<const int*>(l), 1);
  return 0;
}
