// Condition variables: pthread_cond_* on our layout, waiting with a patched mutex.
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common.hpp"

namespace ringlet::patch::detail {

namespace {

struct PCond {
  SpinLock spin;
  char pad_[7];
  WaitList waiters;
  std::uint32_t unused_[3];
  std::uint32_t flags;  // glibc's __wrefs bits: 1 process-shared, 2 CLOCK_MONOTONIC
  std::uint32_t unused2_[2];
};
static_assert(sizeof(PCond) == sizeof(pthread_cond_t));
static_assert(offsetof(PCond, flags) == 36);
constexpr std::uint32_t kCondShared = 1, kCondMonotonic = 2;

inline PCond* pc(pthread_cond_t* c) noexcept { return reinterpret_cast<PCond*>(c); }

int cond_wait(PCond* c, pthread_mutex_t* m, Deadline d) noexcept {
  PMutex* p = pm(m);
  if (foreign(p)) return EINVAL;  // a robust/PI/shared mutex with a private condvar: unsupported
  if (mtype(p) != PTHREAD_MUTEX_NORMAL &&
      p->owner.load(std::memory_order_relaxed) != ringlet::detail::self_identity())
    return EPERM;
  Waiter w;
  w.arm();
  c->spin.lock();
  c->waiters.push(&w);
  // Give the mutex up entirely (a recursive one however deep), after registering: a notify
  // that follows the unlock finds us.
  const std::uint32_t depth = p->depth;
  p->depth = 0;
  mutex_unlock(p);
  const bool notified = wait_on(c->spin, c->waiters, w, d, "pthread_cond_wait (patched)");
  c->spin.unlock();
  count_waited(Call::pthread_cond_wait);
  mutex_lock(p, Deadline::never(), false);
  p->depth = depth;
  return notified || d.is_never() || !d.passed() ? 0 : ETIMEDOUT;
}

}  // namespace

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- condition variables -----------------------------------------------------------------

RINGLET_HOOK int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* attr) {
  if (!sync_patched()) return RINGLET_REAL(pthread_cond_init)(c, attr);
  int shared = PTHREAD_PROCESS_PRIVATE;
  clockid_t clock = CLOCK_REALTIME;
  if (attr) {
    pthread_condattr_getpshared(attr, &shared);
    pthread_condattr_getclock(attr, &clock);
  }
  if (shared != PTHREAD_PROCESS_PRIVATE) return RINGLET_REAL(pthread_cond_init)(c, attr);
  std::memset(static_cast<void*>(c), 0, sizeof *c);
  pc(c)->flags = clock == CLOCK_MONOTONIC ? kCondMonotonic : 0;
  return 0;
}

RINGLET_HOOK int pthread_cond_destroy(pthread_cond_t* c) {
  if (!sync_patched() || (pc(c)->flags & kCondShared)) return RINGLET_REAL(pthread_cond_destroy)(c);
  return 0;
}

RINGLET_HOOK int pthread_cond_signal(pthread_cond_t* c) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_signal)(c);
  p->spin.lock();
  p->waiters.grant_one();
  p->spin.unlock();
  return 0;
}

RINGLET_HOOK int pthread_cond_broadcast(pthread_cond_t* c) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_broadcast)(c);
  p->spin.lock();
  p->waiters.grant_all();
  p->spin.unlock();
  return 0;
}

RINGLET_HOOK int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_wait)(c, m);
  return cond_wait(p, m, Deadline::never());
}

RINGLET_HOOK int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abs) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_timedwait)(c, m, abs);
  Deadline d;
  if (const int e = abs_deadline((p->flags & kCondMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME, abs, d))
    return e;
  return cond_wait(p, m, d);
}

RINGLET_HOOK int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                        const struct timespec* abs) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared))
    return RINGLET_REAL(pthread_cond_clockwait)(c, m, clock, abs);
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return cond_wait(p, m, d);
}
