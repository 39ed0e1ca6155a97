// The blocking monitor (RunOptions::max_blocking_ms): a fiber that holds its scheduler is
// reported, computing or blocked; a scheduler outside its loop holds nothing and is not. (The patch's reports,
// with names and backtraces: test_patch_processes.cpp.)
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "helpers.hpp"
#include "internal/scheduler.hpp"

using namespace std::chrono_literals;
using namespace ringlet;
using ringlet::test::in_scheduler;
using ringlet::test::StderrCapture;

namespace {

void spin(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

TEST_CASE("monitor: a fiber that spins or blocks is reported as such; a scheduler before and after its loop is not",
          "[monitor]") {
  RunOptions opts;
  opts.max_blocking_ms = 20;
  // The control: a fiber that holds its scheduler well past the threshold is reported.
  std::string spun;
  {
    StderrCapture cap;
    in_scheduler(
        [] {
          spin(200ms);
          ringlet::sleep(100ms);  // the monitor sees the scheduler let go, and says so
        },
        opts);
    spun = cap.text();
  }
  INFO(spun);
  CHECK(spun.find("has held its scheduler") != std::string::npos);
  CHECK(spun.find("(threshold 20 ms), computing (") != std::string::npos);
  CHECK(spun.find("let its scheduler go after") != std::string::npos);
  // One blocked in the kernel (a call that should have parked) is told from one computing.
  std::string slept;
  {
    StderrCapture cap;
    int p[2];
    REQUIRE(::pipe(p) == 0);
    std::thread writer([&] {
      std::this_thread::sleep_for(200ms);
      REQUIRE(::write(p[1], "x", 1) == 1);
    });
    in_scheduler(
        [&] {
          // A plain blocking read (not the runtime's): the thread sleeps in the kernel. It is
          // restarted after the monitor's signal (SA_RESTART), as a nanosleep would not be.
          char c = 0;
          CHECK(::read(p[0], &c, 1) == 1);
          ringlet::sleep(100ms);
        },
        opts);
    writer.join();
    ::close(p[0]);
    ::close(p[1]);
    slept = cap.text();
  }
  INFO(slept);
  CHECK(slept.find("(threshold 20 ms), blocked (0 ms on the CPU)") != std::string::npos);
  // A scheduler made and watched whose loop has not begun (core 0 of a run waits so while
  // the run's other threads start: on a loaded machine, longer than a threshold); then one
  // whose loop has ended and that waits before it goes (core 0 joining the other cores).
  std::string waited;
  {
    StderrCapture cap;
    {
      detail::Scheduler s(opts);
      std::this_thread::sleep_for(200ms);
    }
    {
      auto* f = detail::make_fiber([] {});
      Greenlet<void> g{f};
      detail::Scheduler s(opts);
      s.run_main(f);
      std::this_thread::sleep_for(200ms);
    }
    waited = cap.text();
  }
  INFO(waited);
  CHECK(waited.find("held its scheduler") == std::string::npos);
}
