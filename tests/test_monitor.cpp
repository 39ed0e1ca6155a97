// The blocking monitor (RunOptions::max_blocking_ms): a fiber that holds its scheduler is
// reported, computing or blocked; a scheduler outside its loop holds nothing and is not; a
// call that a signal would end early is reported without one and runs its course. (The patch's reports,
// with names and backtraces: test_patch_thread_programs.cpp.)
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
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
          // A plain blocking read (not the runtime's): the thread sleeps in the kernel.
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

namespace {

std::int64_t ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("monitor: a fiber blocked in a call a signal would change is reported, and the call runs its course",
          "[monitor]") {
  // nanosleep, poll and a receive on a socket with a timeout fail with EINTR (a sleep cut
  // short) when a signal handler runs, SA_RESTART or not, and a write to a pipe returns what
  // it has written so far: the monitor must not signal them.
  RunOptions opts;
  opts.max_blocking_ms = 20;
  std::string text;
  int usleep_rc = -2, poll_rc = -2, recv_errno = 0;
  std::int64_t slept_ms = 0, polled_ms = 0, received_ms = 0;
  ssize_t recv_rc = -2, written = -2;
  {
    StderrCapture cap;
    in_scheduler(
        [&] {
          auto t0 = std::chrono::steady_clock::now();
          usleep_rc = ::usleep(300'000);
          slept_ms = ms_since(t0);
          ringlet::sleep(50ms);  // the monitor sees the scheduler let go
          t0 = std::chrono::steady_clock::now();
          poll_rc = ::poll(nullptr, 0, 300);
          polled_ms = ms_since(t0);
          ringlet::sleep(50ms);
          int sv[2];
          REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
          timeval tv{0, 300'000};
          REQUIRE(::setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
          char c;
          t0 = std::chrono::steady_clock::now();
          recv_rc = ::recv(sv[0], &c, 1, 0);  // nothing comes: EAGAIN after 300 ms, as natively
          recv_errno = errno;
          received_ms = ms_since(t0);
          ::close(sv[0]);
          ::close(sv[1]);
          ringlet::sleep(50ms);
          // 1 MiB into a pipe whose reader starts 300 ms later: natively the whole of it.
          int p[2];
          REQUIRE(::pipe(p) == 0);
          std::thread reader([&] {
            std::this_thread::sleep_for(300ms);
            char buf[65536];
            while (::read(p[0], buf, sizeof buf) > 0) {
            }
          });
          const std::string big(1 << 20, 'x');
          written = ::write(p[1], big.data(), big.size());
          ::close(p[1]);
          reader.join();
          ::close(p[0]);
          ringlet::sleep(50ms);
        },
        opts);
    text = cap.text();
  }
  INFO(text);
  CHECK(usleep_rc == 0);
  CHECK(slept_ms >= 300);
  CHECK(poll_rc == 0);
  CHECK(polled_ms >= 300);
  CHECK(recv_rc == -1);
  CHECK(recv_errno == EAGAIN);
  CHECK(received_ms >= 290);  // SO_RCVTIMEO is kept in jiffies
  CHECK(written == 1 << 20);
  // Each reported, as blocked, naming the call, with the place a scan of the stack found.
  CHECK(text.find("(threshold 20 ms), blocked (") != std::string::npos);
  // (restart_syscall: the io_uring engine's task work may have interrupted and restarted it)
  CHECK((text.find("It is blocked in clock_nanosleep") != std::string::npos ||
         text.find("It is blocked in restart_syscall") != std::string::npos));
  CHECK(text.find("It is blocked in poll") != std::string::npos);
  CHECK(text.find("It is blocked in recvfrom") != std::string::npos);
  CHECK(text.find("It is blocked in write") != std::string::npos);
  CHECK(text.find("    #1 ") != std::string::npos);
  CHECK(text.find("let its scheduler go after") != std::string::npos);
}
