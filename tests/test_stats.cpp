// ringlet::stats(): the runtime counters move as the work done says they must, on one core
// and on two, and read as zeros outside any run. Run by both engines' suites.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "ringlet/stats.hpp"

using namespace std::chrono_literals;

namespace {

// This run's only scheduler (the suite runs no other scheduler at the same time).
ringlet::CoreStats here() {
  const ringlet::Stats s = ringlet::stats();
  REQUIRE(s.cores.size() == 1);
  return s.cores[0];
}

}  // namespace

TEST_CASE("stats: outside any run, no cores and zeros", "[stats]") {
  const ringlet::Stats s = ringlet::stats();
  CHECK(s.cores.empty());
  CHECK(s.total.spawned == 0);
  CHECK(s.total.switches == 0);
  CHECK(s.total.parks() == 0);
  CHECK(s.total.stack_bytes_in_use == 0);
  CHECK(ringlet::detail::format_stats(s).rfind("runtime: 0 schedulers\n  total: fibers 0 alive (peak 0)", 0) == 0);
}

TEST_CASE("stats: spawns, peak, switches, joins and stack memory", "[stats]") {
  ringlet::run([] {
    const ringlet::CoreStats before = here();
    CHECK(before.fibers_alive == 1);  // main
    CHECK(before.os_tid == static_cast<int>(::gettid()));
    CHECK(before.stack_bytes_in_use > 0);
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 100; ++i) gs.push_back(ringlet::spawn([] { ringlet::yield(); }));
    const ringlet::CoreStats mid = here();
    CHECK(mid.spawned == before.spawned + 100);
    CHECK(mid.fibers_alive == 101);
    CHECK(mid.fibers_peak >= 101);
    CHECK(mid.stack_bytes_in_use >= before.stack_bytes_in_use + 100 * 16 * 1024);
    ringlet::joinall(gs);
    const ringlet::CoreStats after = here();
    CHECK(after.fibers_alive == 1);
    CHECK(after.fibers_peak >= 101);
    CHECK(after.switches >= mid.switches + 200);  // each ran twice at least (start, after yield)
    CHECK(after.parks_join >= 1);                  // main waited for some of them
    CHECK(after.stack_bytes_in_use == before.stack_bytes_in_use);
    CHECK(after.stack_bytes_cached > 0);  // kept for reuse (beyond the cache, trimmed when idle)
  });
}

TEST_CASE("stats: a sleep is a timer park; a contended Lock a primitive park", "[stats]") {
  ringlet::run([] {
    const ringlet::CoreStats a = here();
    ringlet::sleep(5ms);
    const ringlet::CoreStats b = here();
    CHECK(b.parks_sleep == a.parks_sleep + 1);
    CHECK(b.timers_armed == a.timers_armed + 1);
    CHECK(b.timers_fired == a.timers_fired + 1);
    CHECK(b.parks_primitive == a.parks_primitive);
    CHECK(b.sleeps >= a.sleeps + 1);  // nothing else to run: the loop slept in the reactor
    CHECK(b.idle_spins == 0);         // a lone core has no other core to watch for

    ringlet::Lock lock;
    lock.acquire();
    auto g = ringlet::spawn([&] {
      lock.acquire();  // contended: parks until main releases
      lock.release();
    });
    ringlet::yield();  // g runs and parks on the lock
    const ringlet::CoreStats c = here();
    CHECK(c.parks_primitive == b.parks_primitive + 1);
    CHECK(c.timers_armed == b.timers_armed);  // no deadline: no timer
    lock.release();
    g.join();
    // A wait with a deadline that a wake ends first: armed, not fired.
    ringlet::Event ev;
    auto setter = ringlet::spawn([&] { ev.set(); });
    CHECK(ev.wait(ringlet::Deadline::after(10s)));
    const ringlet::CoreStats d = here();
    CHECK(d.timers_armed == c.timers_armed + 1);
    CHECK(d.timers_fired == c.timers_fired);
    setter.join();
  });
}

TEST_CASE("stats: I/O operations are submitted, parked for and completed", "[stats]") {
  ringlet::run([] {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const ringlet::CoreStats a = here();
    char buf[4];
    auto reader = ringlet::spawn([&] { return ringlet::io::read(p[0], buf, sizeof buf); });
    ringlet::yield();  // the reader waits on the empty pipe
    const ringlet::CoreStats b = here();
    CHECK(b.io_submitted == a.io_submitted + 1);
    CHECK(b.io_completed == a.io_completed);
    CHECK(b.parks_io == a.parks_io + 1);
    ringlet::io::write_all(p[1], "ping", 4);
    CHECK(reader.get() == 4);
    const ringlet::CoreStats c = here();
    CHECK(c.io_submitted >= b.io_submitted + 1);  // the write (it may complete at once)
    CHECK(c.io_completed == c.io_submitted - a.io_submitted + a.io_completed);
    ::close(p[0]);
    ::close(p[1]);
  });
}

TEST_CASE("stats: two cores, each counted, a wake across them counted at both ends", "[stats][multicore]") {
  ringlet::RunOptions o;
  o.threads = 2;
  o.spin_us = 20;
  ringlet::run(
      [] {
        const ringlet::Stats s0 = ringlet::stats();
        REQUIRE(s0.cores.size() == 2);
        CHECK(s0.cores[0].core == 0);
        CHECK(s0.cores[1].core == 1);
        CHECK(s0.cores[0].os_tid != s0.cores[1].os_tid);
        ringlet::Event ev;
        // core 1 parks on the event; main (core 0) sets it: a remote wake.
        auto g = ringlet::spawn_on(1, [&] { ev.wait(); });
        while (ringlet::stats().cores[1].parks_primitive == s0.cores[1].parks_primitive)
          ringlet::sleep(1ms);
        ev.set();
        g.join();
        const ringlet::Stats s1 = ringlet::stats();
        CHECK(s1.cores[0].remote_wakes_sent >= s0.cores[0].remote_wakes_sent + 1);
        CHECK(s1.cores[1].remote_wakes_received >= s0.cores[1].remote_wakes_received + 1);
        CHECK(s1.cores[1].spawned >= s0.cores[1].spawned + 1);
        CHECK(s1.total.spawned == s1.cores[0].spawned + s1.cores[1].spawned);
        CHECK(s1.total.switches == s1.cores[0].switches + s1.cores[1].switches);
        // Core 1 had nothing in flight while its fiber waited: it spun for posts before it
        // slept. A fruitless window ends at 20 µs or at the core's next timer, whichever
        // comes first, so only its having taken some time is certain.
        const ringlet::CoreStats& c1 = s1.cores[1];
        CHECK(c1.idle_spins >= 1);
        CHECK(c1.sleeps >= 1);
        CHECK(c1.idle_spins_found <= c1.idle_spins);
        if (c1.idle_spins > c1.idle_spins_found) CHECK(c1.idle_spin_ns > 0);
        CHECK(s1.total.idle_spins == s1.cores[0].idle_spins + s1.cores[1].idle_spins);
        const std::string text = ringlet::detail::format_stats(s1, "> ");
        CHECK(text.rfind("> runtime: 2 schedulers\n>   total: fibers ", 0) == 0);
        CHECK(text.find("\n>   core 0 (tid ") != std::string::npos);
        CHECK(text.find("\n>   core 1 (tid ") != std::string::npos);
        std::ostringstream os;
        os << s1;
        CHECK(os.str() == ringlet::detail::format_stats(s1));
      },
      o);
}

TEST_CASE("stats: another thread reads a running core's counters", "[stats]") {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> seen_switches{0};
  std::atomic<std::size_t> seen_cores{0};
  std::thread reader([&] {
    while (!stop.load()) {
      const ringlet::Stats s = ringlet::stats();
      if (!s.cores.empty()) {
        seen_cores.store(s.cores.size());
        seen_switches.store(s.total.switches);
      }
      std::this_thread::sleep_for(1ms);
    }
  });
  ringlet::run([&] {
    bool done = false;
    auto partner = ringlet::spawn([&] {
      while (!done) ringlet::yield();
    });
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (seen_switches.load() < 1000 && std::chrono::steady_clock::now() < until) ringlet::yield();
    done = true;
    partner.join();
  });
  stop.store(true);
  reader.join();
  CHECK(seen_cores.load() == 1);
  CHECK(seen_switches.load() >= 1000);
  CHECK(ringlet::stats().cores.empty());  // the run is over
}
