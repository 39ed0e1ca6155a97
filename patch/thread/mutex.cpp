// Mutexes: pthread_mutex_* on our layout (PMutex, common.hpp) for fibers and plain threads.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <gnu/libc-version.h>
#include <linux/futex.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "common.hpp"
#include "offload.hpp"

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

// --- glibc's mutexes on a fiber (process-shared, robust, priority protocols) ---------------
// They live in memory other processes may read, so they keep glibc's encoding; a fiber that
// must wait polls (poll_until: trylock, then a pause of 50 us doubling to 10 ms). glibc
// records the carrier's id as the owner of every fiber thread's lock, so for the kinds that
// check their owner (error-checking, recursive) the fiber that holds it is kept aside
// (held_by): another fiber of the process waits, as another thread would, instead of
// passing glibc's owner check.

namespace {

inline bool owner_checked(pthread_mutex_t* m) noexcept {
  const int t = pm(m)->kind & kKindType;
  return t == PTHREAD_MUTEX_RECURSIVE || t == PTHREAD_MUTEX_ERRORCHECK;
}

// One attempt: 0, EBUSY while another holds it, or glibc's answer (EOWNERDEAD...).
int foreign_try(pthread_mutex_t* m, bool checked, const void* self) noexcept {
  if (checked) {
    const void* who = held_by(m);
    if (who && who != self) return EBUSY;  // another fiber thread of ours holds it
  }
  const int r = RINGLET_REAL(pthread_mutex_trylock)(m);
  if (checked && (r == 0 || r == EOWNERDEAD) && !note_holder(m, self)) {
    RINGLET_REAL(pthread_mutex_unlock)(m);
    return EAGAIN;
  }
  return r;
}

// glibc 2.36's lock word (__lock) of a mutex that is neither robust nor priority-protocol:
// 0 free, 1 held, 2 held and maybe waited for; an unlock that finds 2 wakes one futex
// waiter (a shared futex for a process-shared mutex). Known for this version only.
bool lock_word_known(pthread_mutex_t* m) noexcept {
  static const int known = [] {
    const char* v = gnu_get_libc_version();
    return v && std::strcmp(v, "2.36") == 0 ? 1 : 0;
  }();
  return known && !(pm(m)->kind & (16 | 32 | 64));
}

constexpr std::int64_t kWordWaitCapNs = 100'000'000;  // a helper's futex wait, at most

struct WordWait {
  std::atomic<int>* word;
  std::int64_t ns;
};

// Until the lock can be taken: a helper waits on glibc's lock word (futex, shared) after
// setting it to 2, as glibc's own waiters do, so the holder's unlock (in whatever process)
// wakes it at once. A woken waiter that then takes the lock with trylock (which writes 1)
// puts 2 back, so that its own unlock wakes the next waiter (glibc's waiters take it with
// 2 for the same reason). Each helper wait is capped at 100 ms, then the word is looked at
// again.
int word_lock_wait(pthread_mutex_t* m, bool checked, const void* self, Deadline d) noexcept {
  auto* word = reinterpret_cast<std::atomic<int>*>(&m->__data.__lock);
  for (;;) {
    const int r = foreign_try(m, checked, self);
    if (r != EBUSY) {
      int one = 1;
      if (r == 0) word->compare_exchange_strong(one, 2, std::memory_order_relaxed);
      return r;
    }
    if (d.passed()) return ETIMEDOUT;
    int v = word->load(std::memory_order_relaxed);
    if (v == 0) continue;
    if (v == 1 && !word->compare_exchange_strong(v, 2, std::memory_order_relaxed)) continue;
    std::int64_t ns = kWordWaitCapNs;
    if (!d.is_never()) {
      const std::int64_t left = std::chrono::duration_cast<std::chrono::nanoseconds>(d.remaining()).count();
      if (left < ns) ns = left > 0 ? left : 1;
    }
    WordWait ww{word, ns};
    OffloadJob j;
    j.ctx = &ww;
    j.run = [](OffloadJob& job) -> long {
      auto* w = static_cast<WordWait*>(job.ctx);
      const timespec rel{static_cast<time_t>(w->ns / 1'000'000'000), static_cast<long>(w->ns % 1'000'000'000)};
      const long res = futex(w->word, FUTEX_WAIT, 2, &rel);  // shared: other processes wake it
      job.err = errno;
      return res == -1 && job.err == EINTR ? 0 : res;  // a stray signal: look at the word again
    };
    if (!offload(j, OffloadMode::Uninterruptible, "pthread_mutex_lock, process-shared (patched)"))
      (void)poll_pause(kPollCapNs, false);
  }
}

}  // namespace

// pthread_mutex_lock/timedlock/clocklock (abs null: no timeout) and trylock on a fiber.
RINGLET_SLOW int foreign_lock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abs, bool timed,
                              bool try_only) noexcept {
  // glibc's clocklock refuses a clock it cannot wait on before anything else.
  if (timed && clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC) return EINVAL;
  const bool checked = owner_checked(m);
  const void* self = ringlet::detail::self_identity();
  if (checked && held_by(m) == self && (pm(m)->kind & kKindType) == PTHREAD_MUTEX_ERRORCHECK)
    return try_only ? EBUSY : EDEADLK;
  const int r = foreign_try(m, checked, self);
  if (r != EBUSY || try_only) return r;
  Deadline d = Deadline::never();
  if (timed)
    if (const int e = abs_deadline(clock, abs, d)) return e;
  count_on_fiber(Call::pshared_wait);
  count_waited(Call::pshared_wait);
  if (lock_word_known(m)) return word_lock_wait(m, checked, self, d);
  return poll_until([&] { return foreign_try(m, checked, self); }, d);
}

RINGLET_SLOW int foreign_unlock(pthread_mutex_t* m) noexcept {
  if (!owner_checked(m)) return RINGLET_REAL(pthread_mutex_unlock)(m);
  const void* who = held_by(m);
  if (who && who != ringlet::detail::self_identity()) return EPERM;  // another thread's
  const int r = RINGLET_REAL(pthread_mutex_unlock)(m);
  if (r == 0 && who && m->__data.__count == 0) forget_holder(m);  // recursive: once fully let go
  return r;
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
  if (!sync_patched()) return RINGLET_REAL(pthread_mutex_lock)(m);
  if (foreign(p)) {
    if (Scheduler::current() && Scheduler::current()->running()) return foreign_lock(m, CLOCK_REALTIME, nullptr, false, false);
    return RINGLET_REAL(pthread_mutex_lock)(m);
  }
  return mutex_lock(p, Deadline::never(), false);
}

RINGLET_HOOK int pthread_mutex_trylock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (!sync_patched()) return RINGLET_REAL(pthread_mutex_trylock)(m);
  if (foreign(p)) {
    if (Scheduler::current() && Scheduler::current()->running()) return foreign_lock(m, CLOCK_REALTIME, nullptr, false, true);
    return RINGLET_REAL(pthread_mutex_trylock)(m);
  }
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
  if (!sync_patched()) return RINGLET_REAL(pthread_mutex_unlock)(m);
  if (foreign(p)) {
    if (Scheduler::current() && Scheduler::current()->running()) return foreign_unlock(m);
    return RINGLET_REAL(pthread_mutex_unlock)(m);
  }
  return mutex_unlock(p);
}

RINGLET_HOOK int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched()) return RINGLET_REAL(pthread_mutex_timedlock)(m, abs);
  if (foreign(p)) {
    if (Scheduler::current() && Scheduler::current()->running()) return foreign_lock(m, CLOCK_REALTIME, abs, true, false);
    return RINGLET_REAL(pthread_mutex_timedlock)(m, abs);
  }
  Deadline d;
  if (const int e = abs_deadline(CLOCK_REALTIME, abs, d)) return e;
  return mutex_lock(p, d, false);
}

RINGLET_HOOK int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched()) return RINGLET_REAL(pthread_mutex_clocklock)(m, clock, abs);
  if (foreign(p)) {
    if (Scheduler::current() && Scheduler::current()->running()) return foreign_lock(m, clock, abs, true, false);
    return RINGLET_REAL(pthread_mutex_clocklock)(m, clock, abs);
  }
  Deadline d;
  if (const int e = abs_deadline(clock, abs, d)) return e;
  return mutex_lock(p, d, false);
}
