// The clocks behind the scheduler's per-fiber CPU time (Scheduler::enable_cpu_accounting).
//
// A switch must not pay a system call, and CLOCK_THREAD_CPUTIME_ID is one (about 165 ns on
// the test VM, where a switch costs 25-30 ns): the intervals between switches are measured
// with a cheap clock instead, the TSC (rdtsc, about 8 ns) where the kernel itself keeps time
// with it (its clocksource is "tsc": constant rate, synchronised between CPUs), else
// CLOCK_MONOTONIC through the vDSO (about 16 ns). The thread's real CPU time is read only
// for intervals long enough to have been preempted or blocked (see Scheduler::account_cpu).
#pragma once

#include <cstdint>
#include <ctime>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace ringlet::detail {

struct CheapClock {
  bool tsc = false;                      // rdtsc; else CLOCK_MONOTONIC, a tick a ns
  std::uint64_t mult = std::uint64_t{1} << 32;  // ns per tick, in 32.32 fixed point
  std::uint64_t ticks_per_us = 1000;
};

// Decided and calibrated once per process (about 50 us of calibration on first use).
const CheapClock& cheap_clock() noexcept;

// Now, in ticks of the cheap clock (its origin is arbitrary: only differences mean anything).
inline std::uint64_t cheap_ticks(const CheapClock& c) noexcept {
#if defined(__x86_64__)
  if (c.tsc) return __rdtsc();
#endif
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t ticks_to_ns(const CheapClock& c, std::uint64_t ticks) noexcept {
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(ticks) * c.mult) >> 32);
}
// The same for fewer ticks than a second holds (no 128-bit product needed).
inline std::uint64_t ticks_to_ns_short(const CheapClock& c, std::uint64_t ticks) noexcept {
  return (ticks * c.mult) >> 32;
}

// The calling OS thread's CPU time (user + system) in ns, the kernel's own count: the raw
// system call, so that no clock_gettime a program interposes (the patch's) answers it.
std::uint64_t os_thread_cpu_ns() noexcept;
// The calling OS thread's CPU clock, for another thread to read with os_thread_cpu_ns(clk)
// (what pthread_getcpuclockid makes from the thread id; no call a program interposes).
clockid_t os_thread_cpu_clock() noexcept;
// The CPU time of the thread whose clock clk is, the same way; 0 if it cannot be read.
std::uint64_t os_thread_cpu_ns(clockid_t clk) noexcept;

}  // namespace ringlet::detail
