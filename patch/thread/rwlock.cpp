// Read-write locks: pthread_rwlock_* on our layout, readers preferred.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common.hpp"
#include "offload.hpp"

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

// A process-shared rwlock keeps glibc's encoding. On a fiber a lock that must wait polls
// (poll_until: try, then a pause of 50 us doubling to 10 ms). glibc records the carrier's id
// as the writer for every fiber thread, so the fiber holding the write lock is kept aside
// (held_by): another fiber waits for it, and its holder asking again gets EDEADLK.
static inline bool rw_on_fiber(pthread_rwlock_t* l) noexcept {
  if (!sync_patched() || !prw(l)->shared) return false;
  Scheduler* s = Scheduler::current();
  return s && s->running();
}

static RINGLET_SLOW int shared_rw_lock(pthread_rwlock_t* l, bool write, clockid_t clock, const struct timespec* abs,
                                       bool timed) noexcept {
  // glibc checks the clock and the time first, whether or not it would wait.
  Deadline d = Deadline::never();
  if (timed)
    if (const int e = abs_deadline(clock, abs, d)) return e;
  const void* self = ringlet::detail::self_identity();
  if (held_by(l) == self) return EDEADLK;
  auto attempt = [&]() -> int {
    const void* who = held_by(l);
    if (who && who != self) return EBUSY;
    const int r = write ? RINGLET_REAL(pthread_rwlock_trywrlock)(l) : RINGLET_REAL(pthread_rwlock_tryrdlock)(l);
    if (r == 0 && write && !note_holder(l, self)) {
      RINGLET_REAL(pthread_rwlock_unlock)(l);
      return EAGAIN;
    }
    return r;
  };
  const int r = attempt();
  if (r != EBUSY) return r;
  count_on_fiber(Call::pshared_wait);
  count_waited(Call::pshared_wait);
  return poll_until(attempt, d);
}

RINGLET_HOOK int pthread_rwlock_destroy(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_destroy)(l);
  return 0;
}
RINGLET_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, false, CLOCK_REALTIME, nullptr, false) : RINGLET_REAL(pthread_rwlock_rdlock)(l);
  return rw_lock(prw(l), false, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, true, CLOCK_REALTIME, nullptr, false) : RINGLET_REAL(pthread_rwlock_wrlock)(l);
  return rw_lock(prw(l), true, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) {
    if (!rw_on_fiber(l)) return RINGLET_REAL(pthread_rwlock_tryrdlock)(l);
    const void* who = held_by(l);
    if (who) return EBUSY;  // a write lock of a fiber thread of ours (glibc: EBUSY for its holder too)
    const int r = RINGLET_REAL(pthread_rwlock_tryrdlock)(l);
    if (r == 0 && false && !note_holder(l, ringlet::detail::self_identity())) {
      RINGLET_REAL(pthread_rwlock_unlock)(l);
      return EAGAIN;
    }
    return r;
  }
  return rw_lock(prw(l), false, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) {
    if (!rw_on_fiber(l)) return RINGLET_REAL(pthread_rwlock_trywrlock)(l);
    const void* who = held_by(l);
    if (who) return EBUSY;  // a write lock of a fiber thread of ours (glibc: EBUSY for its holder too)
    const int r = RINGLET_REAL(pthread_rwlock_trywrlock)(l);
    if (r == 0 && true && !note_holder(l, ringlet::detail::self_identity())) {
      RINGLET_REAL(pthread_rwlock_unlock)(l);
      return EAGAIN;
    }
    return r;
  }
  return rw_lock(prw(l), true, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, false, CLOCK_REALTIME, abs, true) : RINGLET_REAL(pthread_rwlock_timedrdlock)(l, abs);
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return rw_lock(prw(l), false, d, false);
}
RINGLET_HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, true, CLOCK_REALTIME, abs, true) : RINGLET_REAL(pthread_rwlock_timedwrlock)(l, abs);
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return rw_lock(prw(l), true, d, false);
}
RINGLET_HOOK int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, false, clock, abs, true) : RINGLET_REAL(pthread_rwlock_clockrdlock)(l, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return rw_lock(prw(l), false, d, false);
}
RINGLET_HOOK int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return rw_on_fiber(l) ? shared_rw_lock(l, true, clock, abs, true) : RINGLET_REAL(pthread_rwlock_clockwrlock)(l, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return rw_lock(prw(l), true, d, false);
}
RINGLET_HOOK int pthread_rwlock_unlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) {
    if (rw_on_fiber(l) && held_by(l) == ringlet::detail::self_identity()) forget_holder(l);
    return RINGLET_REAL(pthread_rwlock_unlock)(l);
  }
  return rw_unlock(prw(l));
}
