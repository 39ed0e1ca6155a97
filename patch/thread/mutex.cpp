// Mutexes: pthread_mutex_* on our layout (PMutex, common.hpp) for fibers and plain threads.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <cstring>

#include "common.hpp"

namespace ringlet::patch::detail {

namespace {

// Take a free mutex (state 0 -> 1) without waiting.
inline bool try_take(PMutex* p) noexcept {
  std::uint32_t e = 0;
  return p->state.compare_exchange_strong(e, 1, std::memory_order_acquire, std::memory_order_relaxed);
}

// Contended: wait on the list, barging allowed (as glibc): a woken waiter competes again.
int lock_wait(PMutex* p, Deadline d) noexcept {
  bool waited = false;
  p->spin.lock();
  for (;;) {
    if (p->state.exchange(2, std::memory_order_acquire) == 0) break;
    Waiter w;
    w.arm();
    p->waiters.push(&w);
    waited = true;
    if (!wait_on(p->spin, p->waiters, w, d, "pthread_mutex_lock (patched)") &&
        !d.is_never() && d.passed()) {
      p->spin.unlock();
      return ETIMEDOUT;
    }
  }
  p->spin.unlock();
  if (waited) count_waited(Call::pthread_mutex_lock);
  return 0;
}

}  // namespace

int mutex_lock(PMutex* p, Deadline d, bool try_only) noexcept {
  const int type = mtype(p);
  const void* self = nullptr;
  if (type != PTHREAD_MUTEX_NORMAL) {
    self = ringlet::detail::self_identity();
    if (p->owner.load(std::memory_order_relaxed) == self) {
      if (type == PTHREAD_MUTEX_ERRORCHECK) return try_only ? EBUSY : EDEADLK;
      if (p->depth == UINT_MAX - 1) return EAGAIN;
      ++p->depth;
      return 0;
    }
  }
  if (!try_take(p)) {
    if (try_only) return EBUSY;
    if (const int e = lock_wait(p, d)) return e;
  }
  if (self) {
    p->owner.store(self, std::memory_order_relaxed);
    p->depth = 0;
  }
  return 0;
}

int mutex_unlock(PMutex* p) noexcept {
  const int type = mtype(p);
  if (type != PTHREAD_MUTEX_NORMAL) {
    if (p->owner.load(std::memory_order_relaxed) != ringlet::detail::self_identity() ||
        p->state.load(std::memory_order_relaxed) == 0)
      return EPERM;
    if (p->depth > 0) {
      --p->depth;
      return 0;
    }
    p->owner.store(nullptr, std::memory_order_relaxed);
  }
  if (p->state.exchange(0, std::memory_order_release) == 2) {
    p->spin.lock();
    p->waiters.grant_one();
    p->spin.unlock();
  }
  return 0;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- mutexes -----------------------------------------------------------------------------

RINGLET_HOOK int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) {
  const int e = RINGLET_REAL(pthread_mutex_init)(m, attr);  // glibc works out __kind
  if (e != 0 || !sync_patched() || foreign(pm(m))) return e;
  const int kind = pm(m)->kind;
  std::memset(static_cast<void*>(m), 0, sizeof *m);
  pm(m)->kind = kind;
  return 0;
}

RINGLET_HOOK int pthread_mutex_destroy(pthread_mutex_t* m) {
  if (!sync_patched() || foreign(pm(m))) return RINGLET_REAL(pthread_mutex_destroy)(m);
  return pm(m)->state.load(std::memory_order_relaxed) != 0 ? EBUSY : 0;
}

RINGLET_HOOK int pthread_mutex_lock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (RINGLET_LIKELY(sync_patched() && p->kind == 0)) {
    if (RINGLET_LIKELY(try_take(p))) return 0;
    return lock_wait(p, Deadline::never());
  }
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_lock)(m);
  return mutex_lock(p, Deadline::never(), false);
}

RINGLET_HOOK int pthread_mutex_trylock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_trylock)(m);
  return mutex_lock(p, Deadline::never(), true);
}

RINGLET_HOOK int pthread_mutex_unlock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (RINGLET_LIKELY(sync_patched() && p->kind == 0)) {
    if (RINGLET_LIKELY(p->state.exchange(0, std::memory_order_release) != 2)) return 0;
    p->spin.lock();
    p->waiters.grant_one();
    p->spin.unlock();
    return 0;
  }
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_unlock)(m);
  return mutex_unlock(p);
}

RINGLET_HOOK int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_timedlock)(m, abs);
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return mutex_lock(p, d, false);
}

RINGLET_HOOK int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_clocklock)(m, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return mutex_lock(p, d, false);
}
