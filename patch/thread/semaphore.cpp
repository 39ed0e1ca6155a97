// Unnamed semaphores: sem_* on our layout; fibers park, plain threads sleep on the futex.
#include <errno.h>
#include <semaphore.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "cancel.hpp"
#include "common.hpp"
#include "offload.hpp"

namespace ringlet::patch::detail {

namespace {

struct PSem {
  std::atomic<std::uint32_t> value;
  std::atomic<std::uint32_t> thread_waiters;  // plain threads asleep on the value's futex
  std::uint32_t magic;                        // glibc's `private` field holds 0 or 128
  SpinLock spin;
  char pad_[3];
  WaitList fibers;                            // fibers parked in sem_wait
};
static_assert(sizeof(PSem) == sizeof(sem_t));
constexpr std::uint32_t kSemMagic = 0x52474c53u;  // "RGLS"

inline PSem* ps(sem_t* s) noexcept { return reinterpret_cast<PSem*>(s); }
inline bool our_sem(const PSem* s) noexcept { return s->magic == kSemMagic; }

bool sem_take(PSem* s) noexcept {
  std::uint32_t v = s->value.load(std::memory_order_relaxed);
  while (v > 0)
    if (s->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

int sem_wait_until(PSem* s, Deadline d) noexcept {
  if (sem_take(s)) return 0;
  Scheduler* sch = Scheduler::current();
  Fiber* f = sch ? sch->running() : nullptr;
  count_waited(Call::sem_wait);
  if (!f) {
    s->thread_waiters.fetch_add(1, std::memory_order_acq_rel);
    int e = 0;
    while (!sem_take(s)) {
      if (!d.is_never() && d.passed()) {
        e = ETIMEDOUT;
        break;
      }
      const int r = futex_wait_until(&s->value, 0, d);
      if (r == EINTR) {
        if (sem_take(s)) break;
        e = EINTR;
        break;
      }
    }
    s->thread_waiters.fetch_sub(1, std::memory_order_acq_rel);
    return e;
  }
  // A fiber: park on the list, interruptible so a signal handler's sem_post (which must not
  // take our spinlock) or any signal ends the wait as it would end the futex wait.
  ringlet::detail::WaitSpec spec;
  spec.what = "sem_wait (patched)";
  spec.kind = ringlet::detail::WaitKind::Primitive;
  spec.deadline = d;
  spec.any_thread = true;
  spec.signal_wakeable = true;  // a handler's sem_post: threads that all wait here are no deadlock
  for (;;) {
    Waiter w;
    s->spin.lock();
    if (sem_take(s)) {
      s->spin.unlock();
      return 0;
    }
    w.arm();
    s->fibers.push(&w);
    ringlet::detail::Woke o;
    {
      ringlet::detail::InterruptScope scope;
      o = ringlet::detail::wait_in(s->spin, s->fibers, w, spec);
    }
    s->spin.unlock();
    // Ended by the caller's cancel (cancel.hpp): it acts without taking a unit.
    if (o == ringlet::detail::Woke::Killed && cancel_acts_here()) return EINTR;
    if (sem_take(s)) return 0;
    switch (o) {
      case ringlet::detail::Woke::Notified: continue;  // granted, but another took it first
      case ringlet::detail::Woke::Deadline:
      case ringlet::detail::Woke::Scoped: return ETIMEDOUT;
      default: return EINTR;  // a signal, a kill (it stays pending) or the deadlock breaker
    }
  }
}

}  // namespace

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- semaphores --------------------------------------------------------------------------

// glibc's semaphores (named ones, sem_init with pshared): other processes post them, so
// they keep glibc's encoding. On a fiber: sem_trywait first, then the real wait on a helper
// thread while the fiber parks (offload.hpp). A handler without SA_RESTART ends sem_wait
// with EINTR (one with SA_RESTART lets it go on, as the kernel's futex wait restarts);
// a timed wait answers EINTR to any handler, as natively.
namespace {
struct SemCall {
  sem_t* s;
  clockid_t clock;
  const struct timespec* abs;
  int kind;  // 0 sem_wait, 1 sem_timedwait, 2 sem_clockwait
};

RINGLET_SLOW int shared_sem_wait(sem_t* s, int kind, clockid_t clock, const struct timespec* abs) noexcept {
  // glibc checks the clock and the time before it looks at the value.
  if ((kind == 2 && clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) ||
      (kind != 0 && (abs->tv_nsec < 0 || abs->tv_nsec >= 1'000'000'000))) {
    errno = EINVAL;
    return -1;
  }
  const int saved = errno;
  if (RINGLET_REAL(sem_trywait)(s) == 0) return 0;
  if (errno != EAGAIN) return -1;  // EINVAL...
  errno = saved;
  SemCall c{s, clock, abs, kind};
  OffloadJob j;
  j.ctx = &c;
  j.run = [](OffloadJob& job) -> long {
    auto* sc = static_cast<SemCall*>(job.ctx);
    const int r = sc->kind == 0   ? RINGLET_REAL(sem_wait)(sc->s)
                  : sc->kind == 1 ? RINGLET_REAL(sem_timedwait)(sc->s, sc->abs)
                                  : RINGLET_REAL(sem_clockwait)(sc->s, sc->clock, sc->abs);
    job.err = errno;
    return r;
  };
  if (!offload(j, kind == 0 ? OffloadMode::Restartable : OffloadMode::NeverRestarted,
               "sem_wait, process-shared (patched)")) {
    return kind == 0 ? RINGLET_REAL(sem_wait)(s)
                     : kind == 1 ? RINGLET_REAL(sem_timedwait)(s, abs) : RINGLET_REAL(sem_clockwait)(s, clock, abs);
  }
  count_on_fiber(Call::sem_wait);
  count_waited(Call::sem_wait);
  if (j.res == -1) errno = j.err;
  return static_cast<int>(j.res);
}

inline bool on_a_fiber() noexcept {
  // RINGLET_PATCH without "thread" leaves every object to glibc, waits included.
  if (!sync_patched()) return false;
  Scheduler* sc = Scheduler::current();
  return sc && sc->running();
}
}  // namespace

RINGLET_HOOK int sem_init(sem_t* s, int pshared, unsigned value) {
  if (!sync_patched() || pshared) return RINGLET_REAL(sem_init)(s, pshared, value);
  if (value > SEM_VALUE_MAX) {
    errno = EINVAL;
    return -1;
  }
  std::memset(static_cast<void*>(s), 0, sizeof *s);
  ps(s)->value.store(value, std::memory_order_relaxed);
  ps(s)->magic = kSemMagic;
  return 0;
}

RINGLET_HOOK int sem_destroy(sem_t* s) {
  if (!our_sem(ps(s))) return RINGLET_REAL(sem_destroy)(s);
  ps(s)->magic = 0;
  return 0;
}

RINGLET_HOOK int sem_post(sem_t* s) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_post)(s);
  std::uint32_t v = p->value.load(std::memory_order_relaxed);
  do {
    if (v >= SEM_VALUE_MAX) {
      errno = EOVERFLOW;
      return -1;
    }
  } while (!p->value.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed));
  if (p->thread_waiters.load(std::memory_order_acquire) > 0) futex_wake(&p->value, 1);
  // In a signal handler the interrupted code may hold the spinlock: take it only if free.
  // A fiber of this thread parked in sem_wait is woken by the signal anyway (EINTR path,
  // which takes the value first).
  if (in_signal_handler()) {
    if (!p->spin.try_lock()) return 0;
  } else {
    p->spin.lock();
  }
  p->fibers.grant_one();
  p->spin.unlock();
  return 0;
}

static int cancel_point_sem_wait(sem_t* s) noexcept {
  PSem* p = ps(s);
  if (!our_sem(p)) return on_a_fiber() ? shared_sem_wait(s, 0, CLOCK_REALTIME, nullptr) : RINGLET_REAL(sem_wait)(s);
  if (const int e = sem_wait_until(p, Deadline::never())) {
    errno = e;
    return -1;
  }
  return 0;
}

RINGLET_HOOK int sem_wait(sem_t* s) {
  return RINGLET_CANCEL_POINT(cancel_point_sem_wait(s));
}

RINGLET_HOOK int sem_trywait(sem_t* s) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_trywait)(s);
  if (sem_take(p)) return 0;
  errno = EAGAIN;
  return -1;
}

// sem_timedwait/sem_clockwait on our semaphore: 0, or -1 with errno.
static int sem_wait_abs(PSem* p, clockid_t clock, const struct timespec* abs) noexcept {
  if (sem_take(p)) return 0;
  Deadline d;
  int e = abs_deadline(clock, abs, d);
  if (e == 0) e = sem_wait_until(p, d);
  if (e == 0) return 0;
  errno = e;
  return -1;
}

static int cancel_point_sem_timedwait(sem_t* s, const struct timespec* abs) noexcept {
  PSem* p = ps(s);
  if (!our_sem(p)) return on_a_fiber() ? shared_sem_wait(s, 1, CLOCK_REALTIME, abs) : RINGLET_REAL(sem_timedwait)(s, abs);
  return sem_wait_abs(p, CLOCK_REALTIME, abs);
}

RINGLET_HOOK int sem_timedwait(sem_t* s, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_sem_timedwait(s, abs));
}

static int cancel_point_sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abs) noexcept {
  PSem* p = ps(s);
  if (!our_sem(p)) return on_a_fiber() ? shared_sem_wait(s, 2, clock, abs) : RINGLET_REAL(sem_clockwait)(s, clock, abs);
  return sem_wait_abs(p, clock, abs);
}

RINGLET_HOOK int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_sem_clockwait(s, clock, abs));
}

RINGLET_HOOK int sem_getvalue(sem_t* s, int* out) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_getvalue)(s, out);
  *out = static_cast<int>(p->value.load(std::memory_order_relaxed));
  return 0;
}
