// The syscall hook: SYS_futex on a fiber parks in a table of waiters keyed by address.
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>

#include <cstdarg>
#include <cstdint>

#include "common.hpp"

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
  Waiter* head = nullptr;
};
FutexBucket g_futex[256];

FutexBucket& bucket_of(const void* addr) noexcept {
  const auto v = reinterpret_cast<std::uintptr_t>(addr);
  return g_futex[((v >> 2) ^ (v >> 10)) & 255u];
}

void unlink_waiter(FutexBucket& b, Waiter* w) noexcept {
  if (w->prev) w->prev->next = w->next;
  else b.head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = nullptr;
  w->linked = false;
}

long futex_wait_fiber(Here h, std::uint32_t* addr, std::uint32_t val, Deadline d) noexcept {
  FutexBucket& b = bucket_of(addr);
  b.spin.lock();
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != val) {
    b.spin.unlock();
    errno = EAGAIN;
    return -1;
  }
  Waiter w;
  w.arm();
  w.slot = addr;
  w.next = b.head;
  if (b.head) b.head->prev = &w;
  b.head = &w;
  w.linked = true;
  h.s->primitive_wait_begin();
  b.spin.unlock();
  h.s->park(w.token, d, ringlet::detail::WaitInfo{"futex wait (patched)", nullptr}, /*interruptible=*/false);
  b.spin.lock();
  h.s->primitive_wait_end();
  if (w.linked) unlink_waiter(b, &w);
  b.spin.unlock();
  if (w.granted) return 0;
  errno = ETIMEDOUT;
  return -1;
}

int futex_wake_fibers(std::uint32_t* addr, int n) noexcept {
  FutexBucket& b = bucket_of(addr);
  int woken = 0;
  b.spin.lock();
  for (Waiter* w = b.head; w && woken < n;) {
    Waiter* next = w->next;
    if (w->slot == addr) {
      unlink_waiter(b, w);
      if (w->claim()) {
        w->granted = true;
        ++woken;
      }
    }
    w = next;
  }
  b.spin.unlock();
  return woken;
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

RINGLET_HOOK long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  if (RINGLET_LIKELY(n != SYS_futex) || !sync_patched())
    return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
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
      return futex_wait_fiber(h, addr, static_cast<std::uint32_t>(a[2]), d);
    }
  }
  return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
