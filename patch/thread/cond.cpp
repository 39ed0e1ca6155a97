// Condition variables: pthread_cond_* on our layout, waiting with a patched mutex.
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cancel.hpp"
#include "common.hpp"
#include "offload.hpp"

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
  // A cancel ends the wait (cancel.hpp); the mutex is taken again below before it acts.
  const bool notified = wait_on(c->spin, c->waiters, w, d, "pthread_cond_wait (patched)",
                                /*cancel_point=*/true);
  c->spin.unlock();
  count_waited(Call::pthread_cond_wait);
  mutex_lock(p, Deadline::never(), false);
  p->depth = depth;
  return notified || d.is_never() || !d.passed() ? 0 : ETIMEDOUT;
}

// A process-shared condition variable keeps glibc's encoding (other processes signal it),
// and glibc's signal wakes only a waiter registered in it. So a fiber's wait is made by a
// helper thread (offload.hpp), registered as glibc registers any waiter, on a mutex of its
// own (hm): the helper takes hm, says so, and waits in the condvar, which lets hm go once
// it is registered; when the fiber can take hm, the helper is registered and the fiber lets
// the caller's mutex go (a signal after that finds the helper). When the helper returns,
// the fiber takes the caller's mutex again. Not ended by signals or kill, as glibc's.
struct SharedWait {
  pthread_cond_t* c;
  pthread_mutex_t hm;
  clockid_t clock;
  const struct timespec* abs;
  bool timed;
};

long shared_wait_run(OffloadJob& j) {
  auto* w = static_cast<SharedWait*>(j.ctx);
  RINGLET_REAL(pthread_mutex_lock)(&w->hm);
  j.stage.store(1, std::memory_order_release);
  const int r = w->timed ? RINGLET_REAL(pthread_cond_clockwait)(w->c, &w->hm, w->clock, w->abs)
                       : RINGLET_REAL(pthread_cond_wait)(w->c, &w->hm);
  j.stage.store(2, std::memory_order_release);  // before hm is free: the fiber reads it after
  RINGLET_REAL(pthread_mutex_unlock)(&w->hm);
  j.err = 0;
  return r;
}

RINGLET_SLOW int shared_cond_wait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                  const struct timespec* abs, bool timed) noexcept {
  SharedWait w{c, {}, clock, abs, timed};
  RINGLET_REAL(pthread_mutex_init)(&w.hm, nullptr);
  OffloadJob j;
  j.ctx = &w;
  j.run = &shared_wait_run;
  if (!offload_submit(j)) {
    RINGLET_REAL(pthread_mutex_destroy)(&w.hm);
    return timed ? RINGLET_REAL(pthread_cond_clockwait)(c, m, clock, abs) : RINGLET_REAL(pthread_cond_wait)(c, m);
  }
  count_on_fiber(Call::pthread_cond_wait);
  count_waited(Call::pthread_cond_wait);
  // Until the helper holds hm, then until it has let it go in the condvar (or returned).
  while (j.stage.load(std::memory_order_acquire) == 0) (void)poll_pause(20'000, false);
  (void)poll_until([&] {
    const int r = RINGLET_REAL(pthread_mutex_trylock)(&w.hm);
    if (r == 0) RINGLET_REAL(pthread_mutex_unlock)(&w.hm);
    return r;
  }, Deadline::never());
  const bool returned = j.stage.load(std::memory_order_acquire) == 2;  // at once: EINVAL...
  int unlock_err = 0;
  if (!returned && (unlock_err = pthread_mutex_unlock(m)) != 0)
    RINGLET_REAL(pthread_cond_broadcast)(c);  // not the caller's mutex: free the helper (a spurious wake-up for others)
  offload_wait(j, OffloadMode::Uninterruptible, "pthread_cond_wait, process-shared (patched)");
  RINGLET_REAL(pthread_mutex_destroy)(&w.hm);
  if (returned) return static_cast<int>(j.res);
  if (unlock_err) return unlock_err;
  const int lr = pthread_mutex_lock(m);
  if (lr != 0) return lr;  // EOWNERDEAD, as glibc's wait answers it
  return static_cast<int>(j.res);
}

inline bool on_a_fiber() noexcept {
  // RINGLET_PATCH without "thread" leaves every object to glibc, waits included.
  if (!sync_patched()) return false;
  Scheduler* s = Scheduler::current();
  return s && s->running();
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

static int cancel_point_pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) noexcept {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) {
    if ((p->flags & kCondShared) && on_a_fiber()) return shared_cond_wait(c, m, CLOCK_REALTIME, nullptr, false);
    return RINGLET_REAL(pthread_cond_wait)(c, m);
  }
  return cond_wait(p, m, Deadline::never());
}

RINGLET_HOOK int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_cond_wait(c, m));
}

static int cancel_point_pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abs) noexcept {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) {
    if ((p->flags & kCondShared) && on_a_fiber())  // the condvar's own clock, as timedwait uses
      return shared_cond_wait(c, m, (p->flags & kCondMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME, abs, true);
    return RINGLET_REAL(pthread_cond_timedwait)(c, m, abs);
  }
  Deadline d;
  if (const int e = abs_deadline((p->flags & kCondMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME, abs, d))
    return e;
  return cond_wait(p, m, d);
}

RINGLET_HOOK int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_cond_timedwait(c, m, abs));
}

static int cancel_point_pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                        const struct timespec* abs) noexcept {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) {
    if ((p->flags & kCondShared) && on_a_fiber()) return shared_cond_wait(c, m, clock, abs, true);
    return RINGLET_REAL(pthread_cond_clockwait)(c, m, clock, abs);
  }
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return cond_wait(p, m, d);
}

RINGLET_HOOK int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                        const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_cond_clockwait(c, m, clock, abs));
}
