// ringlet::stats(): every scheduler's counters (Scheduler::Counters, its StackPool's bytes),
// read from any thread through the registry of schedulers.
#include "ringlet/stats.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <tuple>

#include "internal/scheduler.hpp"

namespace ringlet {

namespace {

CoreStats read_core(const detail::Scheduler& s) {
  using detail::WaitKind;
  const auto& c = s.counters();
  auto parks = [&](WaitKind k) { return c.parks[static_cast<unsigned>(k)].get(); };
  CoreStats r;
  r.core = s.core();
  r.os_tid = s.os_tid();
  r.fibers_alive = s.alive_count();
  r.fibers_peak = s.peak_count();
  r.spawned = s.spawned_count();
  r.switches = s.switch_count();
  r.parks_io = parks(WaitKind::Io);
  r.parks_sleep = parks(WaitKind::Sleep);
  r.parks_primitive = parks(WaitKind::Primitive);
  r.parks_join = parks(WaitKind::Join);
  r.parks_other = parks(WaitKind::Other);
  r.io_submitted = c.io_submitted.get();
  r.io_completed = c.io_completed.get();
  r.timers_armed = c.timers_armed.get();
  r.timers_fired = c.timers_fired.get();
  r.remote_wakes_sent = c.remote_sent.get();
  r.remote_wakes_received = c.remote_received.get();
  r.sleeps = c.sleeps.get();
  r.idle_spins = c.idle_spins.get();
  r.idle_spins_found = c.idle_spins_found.get();
  r.idle_spin_ns = c.idle_spin_ns.get();
  // const_cast: stacks() is the scheduler's accessor; the two byte counts are read-only here.
  const detail::StackPool& pool = const_cast<detail::Scheduler&>(s).stacks();
  r.stack_bytes_in_use = pool.bytes_in_use();
  r.stack_bytes_cached = pool.bytes_cached();
  r.fair_yields = s.fair_yields();
  return r;
}

void add_to(CoreStats& t, const CoreStats& c) {
  t.fibers_alive += c.fibers_alive;
  t.fibers_peak += c.fibers_peak;
  t.spawned += c.spawned;
  t.switches += c.switches;
  t.parks_io += c.parks_io;
  t.parks_sleep += c.parks_sleep;
  t.parks_primitive += c.parks_primitive;
  t.parks_join += c.parks_join;
  t.parks_other += c.parks_other;
  t.io_submitted += c.io_submitted;
  t.io_completed += c.io_completed;
  t.timers_armed += c.timers_armed;
  t.timers_fired += c.timers_fired;
  t.remote_wakes_sent += c.remote_wakes_sent;
  t.remote_wakes_received += c.remote_wakes_received;
  t.sleeps += c.sleeps;
  t.idle_spins += c.idle_spins;
  t.idle_spins_found += c.idle_spins_found;
  t.idle_spin_ns += c.idle_spin_ns;
  t.stack_bytes_in_use += c.stack_bytes_in_use;
  t.stack_bytes_cached += c.stack_bytes_cached;
  t.fair_yields += c.fair_yields;
}

std::string bytes(std::uint64_t b) {
  char buf[32];
  if (b >= (std::uint64_t{10} << 20)) std::snprintf(buf, sizeof buf, "%llu MiB", static_cast<unsigned long long>(b >> 20));
  else std::snprintf(buf, sizeof buf, "%llu KiB", static_cast<unsigned long long>(b >> 10));
  return buf;
}

std::string line(const CoreStats& c) {
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "fibers %llu alive (peak %llu), %llu spawned, %llu switches; "
                "parks %llu (io %llu, sleep %llu, primitive %llu, join %llu, other %llu); "
                "io %llu submitted, %llu completed; timers %llu armed, %llu fired; "
                "remote wakes %llu sent, %llu received; sleeps %llu, idle spins %llu "
                "(%llu found a post, %llu us); stacks %s in use, %s cached; fair yields %llu",
                u(c.fibers_alive), u(c.fibers_peak), u(c.spawned), u(c.switches), u(c.parks()),
                u(c.parks_io), u(c.parks_sleep), u(c.parks_primitive), u(c.parks_join),
                u(c.parks_other), u(c.io_submitted), u(c.io_completed), u(c.timers_armed),
                u(c.timers_fired), u(c.remote_wakes_sent), u(c.remote_wakes_received), u(c.sleeps),
                u(c.idle_spins), u(c.idle_spins_found), u(c.idle_spin_ns / 1000),
                bytes(c.stack_bytes_in_use).c_str(), bytes(c.stack_bytes_cached).c_str(), u(c.fair_yields));
  return buf;
}

}  // namespace

Stats stats() {
  Stats out;
  detail::Scheduler::for_each_scheduler([&](detail::Scheduler* s) { out.cores.push_back(read_core(*s)); });
  // The registry lists the newest first: by core (then thread) reads better.
  std::sort(out.cores.begin(), out.cores.end(), [](const CoreStats& a, const CoreStats& b) {
    return std::tie(a.core, a.os_tid) < std::tie(b.core, b.os_tid);
  });
  for (const CoreStats& c : out.cores) add_to(out.total, c);
  return out;
}

namespace detail {

std::string format_stats(const Stats& s, const std::string& prefix) {
  std::string out = prefix + "runtime: " + std::to_string(s.cores.size()) +
                    (s.cores.size() == 1 ? " scheduler\n" : " schedulers\n");
  if (s.cores.size() != 1) out += prefix + "  total: " + line(s.total) + "\n";
  for (const CoreStats& c : s.cores)
    out += prefix + "  core " + std::to_string(c.core) + " (tid " + std::to_string(c.os_tid) +
           "): " + line(c) + "\n";
  return out;
}

}  // namespace detail

std::ostream& operator<<(std::ostream& os, const Stats& s) { return os << detail::format_stats(s); }

}  // namespace ringlet
