// The syscall hook: SYS_futex on a fiber parks in a table of waiters keyed by address.
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <linux/futex.h>

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <mutex>

#include "common.hpp"
#include "internal/io.hpp"
#include "identity.hpp"

// --- futex through syscall(2) ------------------------------------------------------------

// libstdc++ waits on futexes itself, through syscall(SYS_futex, ...): std::future and
// std::promise, std::atomic<T>::wait, std::latch, std::barrier, std::counting_semaphore.
// A fiber that waited there would block its whole thread, and with it the fiber that would
// wake it. So on a fiber, FUTEX_WAIT parks in a table of waiters keyed by address, and
// every FUTEX_WAKE made through syscall() wakes those first, then the kernel's.
namespace ringlet::patch::detail {
namespace {

struct FutexBucket {
  SpinLock spin;
  WaitList waiters;  // each with `slot` = the address it waits on
};
FutexBucket g_futex[256];

FutexBucket& bucket_of(const void* addr) noexcept {
  const auto v = reinterpret_cast<std::uintptr_t>(addr);
  return g_futex[((v >> 2) ^ (v >> 10)) & 255u];
}

}  // namespace

long futex_wait_fiber(std::uint32_t* addr, std::uint32_t val, Deadline d, const char* what,
                      Deadline recheck) noexcept {
  FutexBucket& b = bucket_of(addr);
  b.spin.lock();
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != val) {
    b.spin.unlock();
    errno = EAGAIN;
    return -1;
  }
  ringlet::detail::WaitSpec spec;
  spec.what = what;
  spec.kind = ringlet::detail::WaitKind::Primitive;
  spec.deadline = std::min(d, recheck);
  spec.interruptible = false;
  spec.any_thread = true;
  spec.signal_wakeable = true;  // an atomic's notify from a handler (C++20 semaphores, latches)
  for (;;) {
    Waiter w;
    w.arm();
    w.slot = addr;
    b.waiters.push(&w);
    const auto r = ringlet::detail::wait_in(b.spin, b.waiters, w, spec);
    // Back with the bucket locked and `w` out of the table: a wake made since is either the
    // one that woke it, or still to come and will find the wait linked again below.
    if (r == ringlet::detail::Woke::Notified) break;
    if (r != ringlet::detail::Woke::Deadline || spec.deadline == d) {
      b.spin.unlock();
      errno = ETIMEDOUT;
      return -1;
    }
    if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != val) break;  // a wake-up that came as a store
    spec.deadline = d;
  }
  b.spin.unlock();
  return 0;
}

int futex_wake_fibers(const void* addr, int n) noexcept {
  if (n <= 0) return 0;
  FutexBucket& b = bucket_of(addr);
  std::lock_guard<SpinLock> lock(b.spin);
  return static_cast<int>(b.waiters.grant_slot(addr, static_cast<std::size_t>(n)));
}

namespace {
}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// A fiber's first park in a futex wait, before the word is read again (see the hook below).
constexpr std::int64_t kFirstFutexPark = 50'000;  // ns

RINGLET_HOOK long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  if (RINGLET_LIKELY(n != SYS_futex) || !sync_patched()) {
    // A fiber thread's own id, and the calls that take one (identity.cpp).
    switch (n) {
      case SYS_gettid:
        return patched_gettid();
      case SYS_tgkill:
      case SYS_tkill: {
        const bool tg = n == SYS_tgkill;
        const long r = signal_thread_id(tg ? static_cast<pid_t>(a[0]) : -1,
                                        static_cast<pid_t>(tg ? a[1] : a[0]), static_cast<int>(tg ? a[2] : a[1]));
        if (r != -2) return r;
        break;
      }
      case SYS_close_range:  // as the close_range hook: every carrier's engine is told
        if (!(static_cast<unsigned>(a[2]) & CLOSE_RANGE_CLOEXEC) && static_cast<unsigned>(a[0]) <= static_cast<unsigned>(a[1]))
          ringlet::detail::fds_replaced(static_cast<unsigned>(a[0]), static_cast<unsigned>(a[1]));
        break;
      case SYS_sched_getaffinity:
      case SYS_sched_setaffinity:
        a[0] = affinity_target(static_cast<pid_t>(a[0]));
        break;
      case SYS_execve:
      case SYS_execveat: {  // as the exec hooks (exec.cpp): the monitor lets the thread be first
        ringlet::detail::monitor_before_exec();
        const long r = RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
        const int e = errno;
        ringlet::detail::monitor_after_failed_exec();
        errno = e;
        return r;
      }
      default:
        break;
    }
    return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  auto* addr = reinterpret_cast<std::uint32_t*>(a[0]);
  const int op = static_cast<int>(a[1]);
  const int cmd = op & FUTEX_CMD_MASK;
  if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
    const int want = static_cast<int>(a[2]);
    const int woken = futex_wake_fibers(addr, want);
    if (woken >= want) return woken;
    const long more = RINGLET_REAL(syscall)(n, a[0], a[1], want - woken, a[3], a[4], a[5]);
    return more < 0 ? (woken ? woken : more) : woken + more;
  }
  if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
    if (Here h = on_fiber(Thread)) {
      const auto* ts = reinterpret_cast<const timespec*>(a[3]);
      Deadline d = Deadline::never();
      if (ts) {
        if (!valid_timespec(ts)) {
          errno = EINVAL;
          return -1;
        }
        if (cmd == FUTEX_WAIT)
          d = deadline_after_ns(ts->tv_sec * 1'000'000'000LL + ts->tv_nsec);
        else
          d = deadline_at((op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, ts);
      }
      // The kernel compares the word hundreds of nanoseconds after the caller last read it;
      // this check comes at once. libstdc++'s notify (a release store of the word, then a
      // load of its count of waiters, which it skips FUTEX_WAKE on when zero) can then miss
      // a waiter that read the word while that store was still in the notifier's store
      // buffer: the waiter parks on a value already replaced and nobody wakes it (seen: the
      // multicore hand-off test hung 1 run in 12 to 20 on epoll). So the first park is short
      // and the word is read again: changed means a wake-up (FUTEX_WAIT may return
      // spuriously; every caller checks its word again), else the wait goes on.
      // The word is read again with the bucket still locked, the waiter relinked under the
      // same lock: a FUTEX_WAKE that leaves the word as it was is never missed in between.
      return futex_wait_fiber(addr, static_cast<std::uint32_t>(a[2]), d, "futex wait (patched)",
                              deadline_after_ns(kFirstFutexPark));
    }
  }
  return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
