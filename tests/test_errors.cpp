// Cross-thread wake-ups and the errors a user can run into: bad settings, no memory for
// stacks.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "internal/env.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;

namespace {
// Sets a variable for a scope, then puts back what was there (the suite itself runs under
// RINGLET_BACKEND=epoll once).
struct EnvVar {
  const char* name;
  std::optional<std::string> saved;
  EnvVar(const char* n, const char* v) : name(n) {
    if (const char* old = std::getenv(n)) saved = old;
    setenv(n, v, 1);
  }
  ~EnvVar() {
    if (saved) setenv(name, saved->c_str(), 1);
    else unsetenv(name);
  }
};
}  // namespace

TEST_CASE("another thread wakes parked fibers; a burst costs no lost wake-ups", "[remote]") {
  using ringlet::detail::Fiber;
  using ringlet::detail::Scheduler;
  using ringlet::detail::WakeReason;
  constexpr int kFibers = 64, kRounds = 200;
  in_scheduler([] {
    struct Slot {
      std::atomic<Fiber*> fiber{nullptr};
      std::atomic<std::uint64_t> token{0};
    };
    std::vector<Slot> slots(kFibers);
    Scheduler& s = *Scheduler::current();
    std::atomic<bool> stop{false};
    std::vector<ringlet::Greenlet<int>> gs;
    for (int i = 0; i < kFibers; ++i)
      gs.push_back(ringlet::spawn([&, i] {
        int woken = 0;
        for (int r = 0; r < kRounds; ++r) {
          Fiber* self = ringlet::detail::current_fiber();
          const std::uint64_t token = st(self).epoch.load();
          s.expect_remote_wake();
          slots[i].token.store(token);
          slots[i].fiber.store(self, std::memory_order_release);
          WakeReason why = s.park(token, ringlet::Deadline::never(), {"remote test", nullptr, ringlet::Deadline::never(), -1});
          s.remote_wake_done();
          if (why == WakeReason::Notified) ++woken;
        }
        return woken;
      }));
    std::thread waker([&] {
      int left = kFibers * kRounds;
      while (left > 0 && !stop.load()) {
        for (auto& slot : slots) {
          Fiber* f = slot.fiber.exchange(nullptr, std::memory_order_acquire);
          if (f && Scheduler::wake(f, slot.token.load(), WakeReason::Notified)) --left;
        }
      }
    });
    int total = 0;
    for (auto& g : gs) total += g.get();
    stop = true;
    waker.join();
    CHECK(total == kFibers * kRounds);
  });
}

TEST_CASE("bad settings in the environment are clear errors", "[errors]") {
  {
    EnvVar v("RINGLET_STACK_SIZE", "lots");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_STACK_SIZE='lots'"));
  }
  {
    EnvVar v("RINGLET_BACKEND", "kqueue");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_BACKEND='kqueue'"));
  }
  {
    EnvVar v("RINGLET_STACK_GUARD", "maybe");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_STACK_GUARD='maybe'"));
  }
  {
    EnvVar v("RINGLET_STACK_CACHE", "-3");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_STACK_CACHE='-3'"));
  }
  // Each refused before the scheduler is set up: the thread can run one right after.
  {
    EnvVar v("RINGLET_SPIN_US", "soon");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_SPIN_US='soon'"));
  }
  {
    EnvVar v("RINGLET_MAX_BLOCKING_MS", "-5");
    CHECK_THROWS_WITH(ringlet::run([] {}), Catch::Contains("RINGLET_MAX_BLOCKING_MS='-5'"));
  }
  {
    EnvVar v("RINGLET_SPIN_US", "1001");
    ringlet::RunOptions two;
    two.threads = 2;
    CHECK_THROWS_WITH(ringlet::run([] {}, two), Catch::Contains("RINGLET_SPIN_US='1001'"));
  }
  CHECK(ringlet::run([] { return 3; }) == 3);
  {
    EnvVar v("RINGLET_STACK_SIZE", "256K");
    ringlet::run([] {
      CHECK(ringlet::detail::Scheduler::current()->stacks().default_size() == 256 * 1024);
    });
  }
}

TEST_CASE("spawn outside ringlet::run is a std::logic_error, and the fiber is freed", "[errors]") {
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> seen = owned;
  CHECK_THROWS_AS(ringlet::spawn([o = std::move(owned)] { return *o; }), std::logic_error);
  CHECK(seen.expired());  // the fiber, and what its function captured, are gone
  CHECK_THROWS_WITH(ringlet::spawn([] {}), Catch::Contains("outside ringlet::run"));
}

TEST_CASE("running out of memory for stacks is an exception from spawn, not a crash", "[errors]") {
#if defined(__SANITIZE_ADDRESS__)
  RINGLET_SKIP("AddressSanitizer reserves address space up front; RLIMIT_AS cannot be tested");
#endif
  auto r = ringlet::test::in_child([] {
    rlimit lim{};
    getrlimit(RLIMIT_AS, &lim);
    lim.rlim_cur = 2ull << 30;  // 2 GiB of address space: ~30 000 stacks
    setrlimit(RLIMIT_AS, &lim);
    std::string msg = "none";
    std::size_t spawned = 0;
    try {
      ringlet::run([&] {
        std::vector<ringlet::Greenlet<void>> gs;
        try {
          for (;;) {
            gs.push_back(ringlet::spawn([] { ringlet::sleep(10ms); }));
            ++spawned;
          }
        } catch (const std::system_error& e) {
          msg = e.what();
        }
        ringlet::joinall(gs);  // the ones that exist still run and finish
      });
    } catch (const std::exception& e) {
      msg = std::string("run threw: ") + e.what();
    }
    std::fprintf(stderr, "%s|%zu", msg.c_str(), spawned);
  });
  const std::string& out = r.err;
  const int status = r.status;
  INFO(out);
  CHECK(WIFEXITED(status));
  CHECK(out.find("ringlet: cannot map") != std::string::npos);
  CHECK(out.find("for fiber stacks") != std::string::npos);
  CHECK(std::stoul(out.substr(out.find('|') + 1)) > 1000);
}

TEST_CASE("io_uring refused (as by a seccomp profile): epoll runs, and says so once", "[backend][errors]") {
  // The notice is once per process: if this (parent) process has said it already, the
  // forked child must stay quiet.
  const bool said_already = ringlet::detail::engine_notice_said();
  auto r = ringlet::test::in_child([] {
    unsetenv("RINGLET_BACKEND");  // the automatic choice is under test
    // Make io_uring_setup fail with EPERM, as container seccomp profiles do.
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
      std::fprintf(stderr, "no seccomp here");
      _exit(3);
    }
    for (int i = 0; i < 3; ++i) {
      std::string engine = ringlet::run([] {
        ringlet::sleep(1ms);
        return std::string(ringlet::engine());
      });
      std::fprintf(stderr, "[ran on %s]\n", engine.c_str());
    }
    try {
      ringlet::run([] {}, ringlet::RunOptions{.backend = ringlet::Backend::IoUring});
    } catch (const std::runtime_error& e) {
      std::fprintf(stderr, "[forced: %s]\n", e.what());
    }
  });
  INFO(r.err);
  if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3) RINGLET_SKIP("seccomp filters are not allowed here");
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  const std::string notice = "ringlet: engine epoll, because io_uring cannot be set up: Operation not permitted";
  std::size_t times = 0;
  for (auto at = r.err.find("ringlet: engine epoll"); at != std::string::npos;
       at = r.err.find("ringlet: engine epoll", at + 1))
    ++times;
  CHECK(times == (said_already ? 0u : 1u));  // once per process, not per scheduler
  if (!said_already) CHECK(r.err.find(notice) != std::string::npos);
  CHECK(r.err.find("[ran on epoll]") != std::string::npos);
  CHECK(r.err.find("[forced: ringlet: io_uring was requested but cannot run here") != std::string::npos);
}
