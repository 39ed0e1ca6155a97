// Test helpers: run a body in a fresh scheduler and check nothing is left behind.
#pragma once

#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include "internal/scheduler.hpp"
#include "ringlet/ringlet.hpp"

namespace ringlet::test {

// A fiber that counts 5 ms ticks while alive: proof that a wait did not block the thread.
struct Ticker {
  std::atomic<int> ticks{0};
  bool stop = false;
  Greenlet<void> g;
  Ticker() {
    g = spawn([this] {
      while (!stop) {
        sleep(std::chrono::milliseconds(5));
        ++ticks;
      }
    });
  }
  ~Ticker() {
    stop = true;
    g.join();
  }
};

// Runs `body` as the main fiber of a new scheduler on this thread; afterwards fails the test
// if any fiber is alive, any operation is in flight or any timer is pending. Returns the
// body's value (rethrows its exception).
template <class Fn>
auto in_scheduler(Fn&& body, const RunOptions& opts = {}) {
  using R = detail::spawn_result_t<Fn>;
  auto* f = detail::make_fiber(std::forward<Fn>(body));
  f->name = "test-main";
  Greenlet<R> g{f};
  {
    detail::Scheduler s(opts);
    s.run_main(f);
    CHECK(s.live_fibers() == 0);
    CHECK(s.reactor().in_flight() == 0);
    CHECK(s.timers_pending() == 0);
  }
  if constexpr (std::is_void_v<R>) g.get();
  else return std::move(g.get());
}

// A kernel without a feature is a skip with its reason, never a silent pass: the line is
// counted by the test summary.
#define RINGLET_SKIP(reason)                                                                   \
  do {                                                                                         \
    std::printf("ringlet-skip: %s: %s\n", Catch::getResultCapture().getCurrentTestName().c_str(), \
                std::string(reason).c_str());                                                  \
    std::fflush(stdout);                                                                       \
    return;                                                                                    \
  } while (0)

// Captures what is written to stderr (fd 2) while alive.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    std::snprintf(path_, sizeof path_, "/tmp/ringlet-stderr-XXXXXX");
    fd_ = mkstemp(path_);
    saved_ = dup(2);
    dup2(fd_, 2);
  }
  ~StderrCapture() { restore(); }
  std::string text() {
    restore();
    std::string out;
    char buf[4096];
    lseek(fd_, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd_, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    unlink(path_);
  }
  char path_[64];
  int fd_ = -1;
  int saved_ = -1;
};

struct ChildResult {
  int status = 0;     // as from waitpid
  std::string err;    // what the child wrote to stderr
};

// Runs fn in a forked child whose stderr is captured; fn may write to `out` (a pipe) what
// the parent should see. The child exits 0 when fn returns.
template <class Fn>
ChildResult in_child(Fn fn) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, &r.status, 0);
  return r;
}

// This process's resident memory (VmRSS), KiB.
inline std::size_t rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      std::size_t v;
      in >> v;
      return v;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

// Options for a run on two scheduler threads (cores 0 and 1).
inline RunOptions two_cores() {
  RunOptions o;
  o.threads = 2;
  return o;
}

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace ringlet::test
