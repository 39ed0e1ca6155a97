#include "internal/cpu_clock.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace ringlet::detail {
namespace {

std::uint64_t mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Whether the kernel keeps time with the TSC. If it does not (it found the TSC unstable, or
// a hypervisor offers another clock), TSC readings on two CPUs may not compare.
bool kernel_clock_is_tsc() noexcept {
  const int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD,
                                            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
                                            O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  char buf[16] = {};
  const long n = ::syscall(SYS_read, fd, buf, sizeof buf - 1);
  ::syscall(SYS_close, fd);
  return n == 4 && std::memcmp(buf, "tsc\n", 4) == 0;
}

#if defined(__x86_64__)
// A (TSC, CLOCK_MONOTONIC) pair read as close together as three tries allow: the monotonic
// reading bracketed by two TSC readings, the narrowest bracket's midpoint kept.
void tsc_pair(std::uint64_t& tsc, std::uint64_t& ns) noexcept {
  std::uint64_t best = ~std::uint64_t{0};
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t a = __rdtsc();
    const std::uint64_t m = mono_ns();
    const std::uint64_t b = __rdtsc();
    if (b - a < best) {
      best = b - a;
      tsc = a + (b - a) / 2;
      ns = m;
    }
  }
}
#endif

CheapClock calibrate() noexcept {
  CheapClock c;
#if defined(__x86_64__)
  if (!kernel_clock_is_tsc()) return c;
  // 50 us against CLOCK_MONOTONIC: each end is known to a bracket of a few tens of ns, so
  // the rate is off by about 0.1 % at most.
  std::uint64_t t0, n0, t1, n1;
  tsc_pair(t0, n0);
  do tsc_pair(t1, n1);
  while (n1 - n0 < 50'000);
  if (t1 <= t0) return c;
  c.mult = static_cast<std::uint64_t>((static_cast<unsigned __int128>(n1 - n0) << 32) / (t1 - t0));
  c.ticks_per_us = (t1 - t0) * 1000 / (n1 - n0);
  c.tsc = c.mult != 0 && c.ticks_per_us != 0;
  if (!c.tsc) c = CheapClock{};
#endif
  return c;
}

}  // namespace

const CheapClock& cheap_clock() noexcept {
  static const CheapClock c = calibrate();
  return c;
}

std::uint64_t os_thread_cpu_ns() noexcept { return os_thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID); }

std::uint64_t os_thread_cpu_ns(clockid_t clk) noexcept {
  timespec ts{};
  if (::syscall(SYS_clock_gettime, clk, &ts) != 0) return 0;
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

clockid_t os_thread_cpu_clock() noexcept {
  // The kernel's per-thread CPUCLOCK_SCHED encoding of the thread id.
  const auto tid = static_cast<clockid_t>(::syscall(SYS_gettid));
  return static_cast<clockid_t>((~tid << 3) | 4 /* per thread */ | 2 /* sched */);
}

}  // namespace ringlet::detail
