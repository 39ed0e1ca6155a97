// The thread group's shared helpers (declared in common.hpp): the group switch, time,
// futexes for plain threads, and the one wait.
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/futex.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cancel.hpp"
#include "common.hpp"

namespace ringlet::patch::detail {

// --- is the thread group on? -------------------------------------------------------------

std::atomic<int> g_sync{-1};

int decide_sync() noexcept {
  int on = 1;
  if (const char* spec = std::getenv("RINGLET_PATCH")) {
    unsigned groups = All;
    std::string error;
    if (parse_groups(spec, groups, error)) on = (groups & Thread) ? 1 : 0;
  }
  int expected = -1;
  g_sync.compare_exchange_strong(expected, on);
  return g_sync.load();
}

// --- time --------------------------------------------------------------------------------

bool valid_timespec(const timespec* ts) noexcept {
  return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000;
}

Deadline deadline_at(clockid_t clock, const timespec* abs) noexcept {
  if (clock == CLOCK_MONOTONIC)  // Deadline's own clock
    return Deadline{std::chrono::steady_clock::time_point(std::chrono::seconds(abs->tv_sec) +
                                                          std::chrono::nanoseconds(abs->tv_nsec))};
  timespec now{};
  ::clock_gettime(clock, &now);
  const std::int64_t ns = (abs->tv_sec - now.tv_sec) * 1'000'000'000LL + (abs->tv_nsec - now.tv_nsec);
  return deadline_after_ns(ns < 0 ? 0 : ns);
}

int abs_deadline(clockid_t clock, const timespec* abs, Deadline& out) noexcept {
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
  out = deadline_at(clock, abs);
  return 0;
}

// --- futexes for plain threads -----------------------------------------------------------

long futex(void* addr, int op, std::uint32_t val, const timespec* ts) noexcept {
  return ::syscall(SYS_futex, addr, op, val, ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

int futex_wait_until(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline d) noexcept {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (!d.is_never()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time().time_since_epoch()).count();
    ts = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    tsp = &ts;
  }
  if (futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, tsp) == 0) return 0;
  return errno;
}

void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept {
  futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(n), nullptr);
}

// --- the one wait ------------------------------------------------------------------------

bool wait_on(SpinLock& sp, WaitList& list, Waiter& w, Deadline d, const char* what,
             bool cancel_point) noexcept {
  ringlet::detail::WaitSpec spec;
  spec.what = what;
  spec.kind = ringlet::detail::WaitKind::Primitive;
  spec.deadline = d;
  // C code cannot see GreenletExit: a kill waits for the next switch point, but for a
  // cancel's at a cancellation point (cancel.hpp).
  spec.interruptible = cancel_point && cancel_may_end_wait();
  spec.any_thread = true;
  return ringlet::detail::wait_in(sp, list, w, spec) == ringlet::detail::Woke::Notified;
}

}  // namespace ringlet::patch::detail
