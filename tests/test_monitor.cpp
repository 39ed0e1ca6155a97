// The blocking monitor (RunOptions::max_blocking_ms): a fiber that holds its scheduler is
// reported; a scheduler outside its loop holds nothing and is not. (The patch's reports,
// with names and backtraces: test_patch_processes.cpp.)
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

TEST_CASE("monitor: a fiber that spins is reported; a scheduler before and after its loop is not",
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
  CHECK(spun.find("let its scheduler go after") != std::string::npos);
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
