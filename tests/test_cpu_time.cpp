// Per-fiber run time (Scheduler::enable_cpu_accounting): what each fiber is charged, against
// the OS thread's own CPU clock. The tolerances are wide (a tenth), but these are time
// measurements: on a machine so loaded that the thread is preempted inside the 50 us
// intervals charged as measured, the charges grow.
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include "helpers.hpp"
#include "internal/cpu_clock.hpp"
#include "internal/scheduler.hpp"

using namespace std::chrono_literals;
using ringlet::detail::os_thread_cpu_ns;
using ringlet::detail::Scheduler;
using ringlet::test::in_scheduler;

namespace {

constexpr std::uint64_t kMs = 1'000'000;

// Burn `ns` of this OS thread's CPU time, yielding every ~100 us so the others run.
void spin_cpu(std::uint64_t ns) {
  const std::uint64_t start = os_thread_cpu_ns();
  std::uint64_t last = start;
  for (;;) {
    const std::uint64_t now = os_thread_cpu_ns();
    if (now - start >= ns) return;
    if (now - last >= 100'000) {
      ringlet::yield();
      last = os_thread_cpu_ns();
    }
  }
}

}  // namespace

TEST_CASE("cpu time: off unless enabled, every fiber charged 0", "[cpu_time]") {
  in_scheduler([] {
    auto g = ringlet::spawn([] { spin_cpu(2 * kMs); });
    g.join();
    CHECK_FALSE(Scheduler::current()->cpu_accounting());
    CHECK(Scheduler::cpu_time_ns(g.native()) == 0);
  });
}

TEST_CASE("cpu time: a spinner is charged its CPU time, a sleeper and a blocked fiber nothing",
          "[cpu_time]") {
  in_scheduler([] {
    Scheduler* s = Scheduler::current();
    s->enable_cpu_accounting();
    s->enable_cpu_accounting();  // idempotent
    ringlet::detail::Fiber* self = s->running();
    // What the thread ran before goes to the fiber that turned accounting on.
    const std::uint64_t main0 = Scheduler::cpu_time_ns(self);
    CHECK(main0 > 0);
    // The OS thread's own clock over the case, and the spinner's from its first instruction
    // to its reading: shown when a check fails, to tell a charge past what the thread ran
    // from one moved between fibers.
    const std::uint64_t thread0 = os_thread_cpu_ns();
    const auto wall0 = std::chrono::steady_clock::now();
    std::uint64_t own_seen = 0, spin_first = 0, spin_last = 0;
    auto spinner = ringlet::spawn([&] {
      spin_first = os_thread_cpu_ns();
      spin_cpu(60 * kMs);
      own_seen = Scheduler::cpu_time_ns(s->running());  // its own, current interval included
      spin_last = os_thread_cpu_ns();
    });
    auto sleeper = ringlet::spawn([] { ringlet::sleep(60ms); });
    // Blocked in a system call the runtime does not see: the OS thread waits, using no CPU.
    auto blocked = ringlet::spawn([] {
      const timespec ts{0, 40 * static_cast<long>(kMs)};
      ::syscall(SYS_nanosleep, &ts, nullptr);
    });
    spinner.join();
    sleeper.join();
    blocked.join();
    const std::uint64_t spun = Scheduler::cpu_time_ns(spinner.native());
    INFO("spinner " << spun << " ns, its own reading " << own_seen << " ns; the thread's CPU clock over its body "
                    << spin_last - spin_first << " ns, over the case " << os_thread_cpu_ns() - thread0
                    << " ns in " << (std::chrono::steady_clock::now() - wall0).count() << " ns of wall time");
    CHECK(spun >= 54 * kMs);
    CHECK(spun <= 66 * kMs);
    CHECK(own_seen >= 54 * kMs);
    CHECK(own_seen <= spun);
    INFO("sleeper " << Scheduler::cpu_time_ns(sleeper.native()) << " ns, blocked "
                    << Scheduler::cpu_time_ns(blocked.native()) << " ns");
    CHECK(Scheduler::cpu_time_ns(sleeper.native()) < 3 * kMs);
    CHECK(Scheduler::cpu_time_ns(blocked.native()) < 3 * kMs);
    // main was charged its own time only, not the spinner's.
    CHECK(Scheduler::cpu_time_ns(self) - main0 < 6 * kMs);
  });
}

TEST_CASE("cpu time: a fiber that never switches is charged by the OS thread's clock",
          "[cpu_time]") {
  in_scheduler([] {
    Scheduler* s = Scheduler::current();
    s->enable_cpu_accounting();
    auto g = ringlet::spawn([] {
      const std::uint64_t start = os_thread_cpu_ns();
      while (os_thread_cpu_ns() - start < 20 * kMs) {
      }
      // One interval of 20 ms: read against the thread's CPU clock, not the wall clock.
      const timespec ts{0, 30 * static_cast<long>(kMs)};
      ::syscall(SYS_nanosleep, &ts, nullptr);
    });
    g.join();
    const std::uint64_t t = Scheduler::cpu_time_ns(g.native());
    INFO(t << " ns");
    CHECK(t >= 18 * kMs);
    CHECK(t <= 24 * kMs);
  });
}
