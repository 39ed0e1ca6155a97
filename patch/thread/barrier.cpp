// Barriers: pthread_barrier_* with the state on the heap, pointed to from the object.
#include <errno.h>
#include <pthread.h>

#include <cstdint>
#include <cstring>
#include <new>

#include "common.hpp"
#include "offload.hpp"

namespace ringlet::patch::detail {

namespace {

struct BarrierState {
  SpinLock spin;
  WaitList waiters;
  unsigned count = 0;
  unsigned arrived = 0;
};
struct PBarrier {
  std::uint64_t unused_[2];
  BarrierState* state;
  std::uint64_t magic;
};
static_assert(sizeof(PBarrier) == sizeof(pthread_barrier_t));
constexpr std::uint64_t kBarrierMagic = 0x52474c5442415252ull;  // "RGLTBARR"

inline PBarrier* pb(pthread_barrier_t* b) noexcept { return reinterpret_cast<PBarrier*>(b); }

}  // namespace

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- barriers ----------------------------------------------------------------------------

RINGLET_HOOK int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) {
  int shared = PTHREAD_PROCESS_PRIVATE;
  if (attr) pthread_barrierattr_getpshared(attr, &shared);
  if (!sync_patched() || shared != PTHREAD_PROCESS_PRIVATE)
    return RINGLET_REAL(pthread_barrier_init)(b, attr, count);
  if (count == 0) return EINVAL;
  auto* st = new (std::nothrow) BarrierState;
  if (!st) return ENOMEM;
  st->count = count;
  std::memset(static_cast<void*>(b), 0, sizeof *b);
  pb(b)->state = st;
  pb(b)->magic = kBarrierMagic;
  return 0;
}

RINGLET_HOOK int pthread_barrier_destroy(pthread_barrier_t* b) {
  if (pb(b)->magic != kBarrierMagic) return RINGLET_REAL(pthread_barrier_destroy)(b);
  BarrierState* st = pb(b)->state;
  st->spin.lock();
  const bool busy = st->arrived != 0;
  st->spin.unlock();
  if (busy) return EBUSY;
  pb(b)->magic = 0;
  delete st;
  return 0;
}

// A process-shared barrier keeps glibc's encoding (other processes wait in it): a fiber's
// wait is made by a helper thread while the fiber parks (offload.hpp); as glibc's, not
// ended by signals or kill.
static RINGLET_SLOW int shared_barrier_wait(pthread_barrier_t* b) noexcept {
  OffloadJob j;
  j.ctx = b;
  j.run = [](OffloadJob& job) -> long {
    job.err = 0;
    return RINGLET_REAL(pthread_barrier_wait)(static_cast<pthread_barrier_t*>(job.ctx));
  };
  if (!offload_submit(j)) return RINGLET_REAL(pthread_barrier_wait)(b);
  count_on_fiber(Call::pthread_barrier_wait);
  count_waited(Call::pthread_barrier_wait);
  offload_wait(j, OffloadMode::Uninterruptible, "pthread_barrier_wait, process-shared (patched)");
  return static_cast<int>(j.res);
}

RINGLET_HOOK int pthread_barrier_wait(pthread_barrier_t* b) {
  if (pb(b)->magic != kBarrierMagic) {
    Scheduler* s = Scheduler::current();
    if (s && s->running() && sync_patched()) return shared_barrier_wait(b);
    return RINGLET_REAL(pthread_barrier_wait)(b);
  }
  BarrierState* st = pb(b)->state;
  st->spin.lock();
  if (++st->arrived == st->count) {
    st->arrived = 0;
    st->waiters.grant_all();
    st->spin.unlock();
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  Waiter w;
  w.arm();
  st->waiters.push(&w);
  count_waited(Call::pthread_barrier_wait);
  while (!wait_on(st->spin, st->waiters, w, Deadline::never(), "pthread_barrier_wait (patched)")) {
    w.arm();
    st->waiters.push(&w);
  }
  st->spin.unlock();
  return 0;
}
