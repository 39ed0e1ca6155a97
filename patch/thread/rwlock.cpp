// Read-write locks: pthread_rwlock_* on our layout, readers preferred.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common.hpp"

namespace ringlet::patch::detail {

namespace {

struct PRw {
  SpinLock spin;
  char pad_[3];
  std::uint32_t readers;
  const void* writer;
  std::uint32_t unused_[3];
  int shared;  // glibc's __shared
  WaitList waiters;
  std::uint32_t flags;
  std::uint32_t unused2_;
};
static_assert(sizeof(PRw) == sizeof(pthread_rwlock_t));
static_assert(offsetof(PRw, shared) == 28);

inline PRw* prw(pthread_rwlock_t* l) noexcept { return reinterpret_cast<PRw*>(l); }

// Readers are preferred (glibc's default): a reader enters whenever no writer holds the lock,
// so a thread may take a read lock it already holds without deadlocking.
int rw_lock(PRw* l, bool write, Deadline d, bool try_only) noexcept {
  const void* self = ringlet::detail::self_identity();
  l->spin.lock();
  if (l->writer == self) {
    l->spin.unlock();
    return try_only ? EBUSY : EDEADLK;
  }
  bool waited = false;
  for (;;) {
    const bool free = write ? (!l->writer && l->readers == 0) : !l->writer;
    if (free) break;
    if (try_only) {
      l->spin.unlock();
      return EBUSY;
    }
    Waiter w;
    w.arm();
    l->waiters.push(&w);
    waited = true;
    if (!wait_on(l->spin, l->waiters, w, d, write ? "pthread_rwlock_wrlock (patched)"
                                                  : "pthread_rwlock_rdlock (patched)") &&
        !d.is_never() && d.passed()) {
      l->spin.unlock();
      return ETIMEDOUT;
    }
  }
  if (write) l->writer = self;
  else if (l->readers == UINT_MAX) {
    l->spin.unlock();
    return EAGAIN;
  } else ++l->readers;
  l->spin.unlock();
  if (waited) count_waited(Call::pthread_rwlock);
  return 0;
}

int rw_unlock(PRw* l) noexcept {
  const void* self = ringlet::detail::self_identity();
  l->spin.lock();
  if (l->writer) {
    if (l->writer != self) {
      l->spin.unlock();
      return EPERM;
    }
    l->writer = nullptr;
  } else if (l->readers > 0) {
    --l->readers;
  } else {
    l->spin.unlock();
    return EPERM;
  }
  if (!l->writer && l->readers == 0) l->waiters.grant_all();  // they compete again
  l->spin.unlock();
  return 0;
}

}  // namespace

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- rwlocks -----------------------------------------------------------------------------

RINGLET_HOOK int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t* attr) {
  const int e = RINGLET_REAL(pthread_rwlock_init)(l, attr);  // glibc records pshared and kind
  if (e != 0 || !sync_patched() || prw(l)->shared) return e;
  const std::uint32_t flags = prw(l)->flags;
  std::memset(static_cast<void*>(l), 0, sizeof *l);
  prw(l)->flags = flags;
  return 0;
}

#define RINGLET_RW_FOREIGN(l) (!sync_patched() || prw(l)->shared)

RINGLET_HOOK int pthread_rwlock_destroy(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_destroy)(l);
  return 0;
}
RINGLET_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_rdlock)(l);
  return rw_lock(prw(l), false, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_wrlock)(l);
  return rw_lock(prw(l), true, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_tryrdlock)(l);
  return rw_lock(prw(l), false, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_trywrlock)(l);
  return rw_lock(prw(l), true, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_timedrdlock)(l, abs);
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return rw_lock(prw(l), false, d, false);
}
RINGLET_HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_timedwrlock)(l, abs);
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return rw_lock(prw(l), true, d, false);
}
RINGLET_HOOK int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_clockrdlock)(l, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return rw_lock(prw(l), false, d, false);
}
RINGLET_HOOK int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_clockwrlock)(l, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return rw_lock(prw(l), true, d, false);
}
RINGLET_HOOK int pthread_rwlock_unlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_unlock)(l);
  return rw_unlock(prw(l));
}
