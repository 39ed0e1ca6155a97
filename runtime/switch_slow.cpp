// What a switch does off its fast path (Scheduler::switch_slow): load another thread pointer
// (a patched thread's own TLS block) and, while CPU time is accounted, charge the interval
// that ends to the fiber switched out; with it the CPU-time queries and the loading of a
// block (adopt_tp). switch_to, the fast path, is in scheduler.cpp.
#include <algorithm>
#include <cstdint>

#include "internal/cpu_clock.hpp"
#include "internal/scheduler.hpp"
#include "internal/thread_pointer.hpp"

namespace ringlet::detail {

__attribute__((noinline, cold)) void Scheduler::switch_slow(Fiber* prev, void* next_tp) noexcept {
  if (cpu_on_) {
    account_cpu(prev);
    acct_since_.store(slice_start_, std::memory_order_relaxed);
    acct_fiber_.store(running_, std::memory_order_release);
  }
  if (next_tp != tp_in_force_) load_tp(next_tp);
}

void Scheduler::load_tp(void* tp) noexcept {
  set_thread_pointer(tp ? tp : home_tp_);
  tp_in_force_ = tp;
  if (!cpu_on_) cur_tp_ = tp;
}

void Scheduler::enable_cpu_accounting() noexcept {
  if (cpu_on_) return;
  clock_ = cheap_clock();
  check_ticks_ = kCpuCheckNs / 1000 * clock_.ticks_per_us;
  const std::uint64_t cpu = os_thread_cpu_ns();
  if (Fiber* f = running()) st(f).cpu_ns.store(cpu, std::memory_order_relaxed);
  cpu_base_ = cpu;
  charged_since_base_ = 0;
  slice_start_ = cheap_ticks(clock_);
  cpu_on_ = true;
  cur_tp_ = accounting_tp();  // from now on every switch takes switch_slow
}

std::uint64_t Scheduler::cpu_charge(std::uint64_t elapsed, std::uint64_t* cpu_now) const noexcept {
  // Long enough to hold a preemption or a blocking call: what the OS thread really ran
  // since the last check, less what the intervals since then were charged.
  *cpu_now = os_thread_cpu_ns();
  const std::uint64_t ran = *cpu_now - cpu_base_;
  if (ran <= charged_since_base_) return 0;
  return std::min(ran - charged_since_base_, elapsed);
}

inline void Scheduler::account_cpu(Fiber* prev) noexcept {
  const std::uint64_t now = cheap_ticks(clock_);
  const std::uint64_t d = now - slice_start_;
  slice_start_ = now;
  if (__builtin_expect(d >= check_ticks_, 0)) return account_long_interval(prev, d);
  const std::uint64_t ns = ticks_to_ns_short(clock_, d);
  charged_since_base_ += ns;
  // The loop's own time belongs to no fiber (it still counts in charged_since_base_).
  if (prev != &native_)
    st(prev).cpu_ns.store(st(prev).cpu_ns.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
}

__attribute__((noinline, cold)) void Scheduler::account_long_interval(Fiber* prev, std::uint64_t ticks) noexcept {
  std::uint64_t cpu_now = 0;
  const std::uint64_t ns = cpu_charge(ticks_to_ns(clock_, ticks), &cpu_now);
  cpu_base_ = cpu_now;
  charged_since_base_ = 0;
  if (prev != &native_)
    st(prev).cpu_ns.store(st(prev).cpu_ns.load(std::memory_order_relaxed) + ns, std::memory_order_relaxed);
}

std::uint64_t Scheduler::cpu_time_ns(const Fiber* f) noexcept {
  const std::uint64_t so_far = st(f).cpu_ns.load(std::memory_order_acquire);
  Scheduler* s = current();
  if (Scheduler* owner = st(f).sched; owner && owner != s) {
    // Running on another core now: what it was charged, plus the wall time of the interval
    // in progress (read again if that interval ended meanwhile).
    if (owner->acct_fiber_.load(std::memory_order_acquire) != f) return so_far;
    const std::uint64_t since = owner->acct_since_.load(std::memory_order_relaxed);
    const std::uint64_t now = cheap_ticks(owner->clock_);
    const std::uint64_t again = st(f).cpu_ns.load(std::memory_order_acquire);
    if (again != so_far || owner->acct_fiber_.load(std::memory_order_acquire) != f || now <= since) return again;
    return so_far + ticks_to_ns(owner->clock_, now - since);
  }
  if (!s || st(f).sched != s || !s->cpu_on_ || s->running_ != f) return so_far;
  const std::uint64_t d = cheap_ticks(s->clock_) - s->slice_start_;
  if (d < s->check_ticks_) return so_far + ticks_to_ns_short(s->clock_, d);
  std::uint64_t cpu_now = 0;
  return so_far + s->cpu_charge(ticks_to_ns(s->clock_, d), &cpu_now);
}

void Scheduler::adopt_tp(void* tp) noexcept {
  Fiber* f = running_;
  st(f).tp = tp;
  load_tp(tp);
  // The runtime's own thread-locals, now in the block in force (initial-exec: each access
  // goes through %fs, so these land in the block just loaded).
  tls_current_ = this;
  tls_identity = f;
}

}  // namespace ringlet::detail
