// Runtime counters: what each scheduler (core) of the process has done so far, and the sums.
// ringlet::stats() may be called from any thread, inside a run or not (no scheduler: no
// cores and zeros). Each scheduler's thread writes its own counters; another thread reads
// them without stopping it, so the figures of a running core are each a recent value, not
// one consistent snapshot.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace ringlet {

struct CoreStats {
  unsigned core = 0;            // index in its run (RunOptions::threads); 0 for a single-core run
  int os_tid = 0;               // the OS thread that runs it (0 in the total)
  std::uint64_t fibers_alive = 0;
  std::uint64_t fibers_peak = 0;  // the most alive at once (total: the sum of the cores' peaks)
  std::uint64_t spawned = 0;
  std::uint64_t switches = 0;   // context switches (fiber to fiber, or to and from the loop)
  // Parks (a fiber gives up its core until woken), by what they wait for.
  std::uint64_t parks_io = 0;         // an I/O operation (reactor)
  std::uint64_t parks_sleep = 0;      // sleep / sleep_until, patched sleeps
  std::uint64_t parks_primitive = 0;  // Lock, Event, Semaphore, Condition, Queue, AsyncResult; patched mutexes, conditions, futexes, semaphores
  std::uint64_t parks_join = 0;       // join / wait for other fibers
  std::uint64_t parks_other = 0;      // anything else (thread-pool hand-offs, the patch's helper threads)
  std::uint64_t io_submitted = 0;     // I/O operations a fiber started through the reactor
  std::uint64_t io_completed = 0;     // ... that ended with the kernel's answer (not cut off by a kill or timeout)
  std::uint64_t timers_armed = 0;     // parks with a deadline (a timer in the scheduler's heap)
  std::uint64_t timers_fired = 0;     // ... whose deadline came first
  std::uint64_t remote_wakes_sent = 0;      // wakes of a fiber of another scheduler, from a fiber here
  std::uint64_t remote_wakes_received = 0;  // fibers here woken from another thread
  // The loop with nothing to run: waits in the reactor (the kernel), and on a core of a
  // multi-core run with no I/O in flight, spins watching for other cores' posts before
  // that (RunOptions::spin_us): how many, how many a post ended, how long in all.
  std::uint64_t sleeps = 0;
  std::uint64_t idle_spins = 0;
  std::uint64_t idle_spins_found = 0;
  std::uint64_t idle_spin_ns = 0;
  std::uint64_t stack_bytes_in_use = 0;     // stacks of live fibers (usable bytes)
  std::uint64_t stack_bytes_cached = 0;     // stacks kept for reuse, still backed by memory
  // Fibers that ran a whole slice without parking and gave way at a fairness point (the
  // patch's calls that did not wait: Scheduler::fair_point).
  std::uint64_t fair_yields = 0;

  std::uint64_t parks() const noexcept {
    return parks_io + parks_sleep + parks_primitive + parks_join + parks_other;
  }
};

struct Stats {
  std::vector<CoreStats> cores;  // every scheduler of the process, by run and core
  CoreStats total;               // summed over cores
};

Stats stats();

// A compact multi-line text: the total, then one line per core (each line starts with prefix).
std::ostream& operator<<(std::ostream& os, const Stats& s);

namespace detail {
std::string format_stats(const Stats& s, const std::string& prefix = "");
}  // namespace detail

}  // namespace ringlet
