// Time and I/O: sleep, Timeout, deadlines, cancellation of operations whose buffers live on
// the fiber's stack, both engines, plain-thread behaviour, idle CPU.
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "internal/timer_heap.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

namespace {

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    close(r);
    close(w);
  }
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

TEST_CASE("seed: two tasks sleeping 2 s and 1 s finish together in about 2 s", "[seed]") {
  auto t0 = ringlet::Clock::now();
  std::vector<std::string> log;
  ringlet::run([&] {
    auto task = [&](std::string name, std::chrono::milliseconds d) {
      log.push_back(name + " start");
      ringlet::sleep(d);
      log.push_back(name + " end");
    };
    auto a = ringlet::spawn(task, "A", 2000ms);
    auto b = ringlet::spawn(task, "B", 1000ms);
    ringlet::joinall(std::vector{a, b});
  });
  double took = seconds_since(t0);
  CHECK(took >= 1.99);
  CHECK(took < 2.5);
  CHECK(log == std::vector<std::string>{"A start", "B start", "B end", "A end"});
}

TEST_CASE("seed: ten 0.5 s tasks finish in about 0.5 s", "[seed]") {
  auto t0 = ringlet::Clock::now();
  ringlet::run([] {
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 10; ++i) gs.push_back(ringlet::spawn([] { ringlet::sleep(500ms); }));
    ringlet::joinall(gs);
  });
  double took = seconds_since(t0);
  CHECK(took >= 0.499);
  CHECK(took < 0.9);
}

TEST_CASE("sleepers wake in deadline order", "[time]") {
  auto order = in_scheduler([] {
    std::vector<int> woke;
    std::vector<ringlet::Greenlet<void>> gs;
    for (int ms : {30, 10, 20, 10})
      gs.push_back(ringlet::spawn([&woke, ms] {
        ringlet::sleep(std::chrono::milliseconds(ms));
        woke.push_back(ms);
      }));
    ringlet::joinall(gs);
    return woke;
  });
  CHECK(order == std::vector<int>{10, 10, 20, 30});
}

TEST_CASE("Timeout fires, does not fire, and nests", "[timeout]") {
  in_scheduler([] {
    auto t0 = ringlet::Clock::now();
    CHECK_THROWS_AS(([] {
                      ringlet::Timeout t{30ms};
                      ringlet::sleep(5s);
                    }()),
                    ringlet::Timeout::Expired);
    CHECK(seconds_since(t0) < 1.0);

    {
      ringlet::Timeout t{1s};
      ringlet::sleep(5ms);  // finishes first: nothing thrown
    }
    ringlet::sleep(5ms);  // and the scope no longer applies

    // Outer earlier than inner: the outer one fires and says so.
    {
      ringlet::Timeout outer{30ms};
      bool caught = false;
      try {
        ringlet::Timeout inner{5s};
        ringlet::sleep(5s);
      } catch (const ringlet::Timeout::Expired& e) {
        caught = true;
        CHECK(e.is(outer));
      }
      CHECK(caught);
    }
    // Inner earlier: the inner one fires; the outer scope carries on.
    {
      ringlet::Timeout outer{5s};
      try {
        ringlet::Timeout inner{20ms};
        ringlet::sleep(5s);
        FAIL("no timeout");
      } catch (const ringlet::Timeout::Expired& e) {
        CHECK_FALSE(e.is(outer));
      }
      ringlet::sleep(5ms);
    }
  });
}

TEST_CASE("an explicit deadline is a value, a Timeout scope is an exception", "[timeout]") {
  in_scheduler([] {
    auto sleeper = ringlet::spawn([] { ringlet::sleep(5s); });
    {
      ringlet::Timeout t{2s};
      CHECK_FALSE(sleeper.join(20ms));  // the explicit one is earlier: false, no throw
    }
    {
      ringlet::Timeout t{20ms};
      CHECK_THROWS_AS(sleeper.join(5s), ringlet::Timeout::Expired);
    }
    sleeper.kill();
  });
}

TEST_CASE("Timeout cancels a pending read whose buffer lives on the fiber's stack", "[timeout][io]") {
  Pipe p;
  in_scheduler([&] {
    auto& sched = *ringlet::detail::Scheduler::current();
    for (int round = 0; round < 20; ++round) {
      CHECK_THROWS_AS(([&] {
                        ringlet::Timeout t{std::chrono::milliseconds(1 + round % 3)};
                        char buf[64];
                        std::memset(buf, 0, sizeof buf);
                        ringlet::io::read(p.r, buf, sizeof buf);
                      }()),
                      ringlet::Timeout::Expired);
      CHECK(sched.reactor().in_flight() == 0);  // the operation is over before the unwind
    }
    // The cancelled reads consumed nothing: the bytes written now reach a new reader whole.
    const char msg[] = "still here";
    ringlet::io::write_all(p.w, msg, sizeof msg);
    char got[sizeof msg] = {};
    CHECK(ringlet::io::read(p.r, got, sizeof got) == sizeof msg);
    CHECK(std::string(got) == "still here");
  });
}

TEST_CASE("killing a fiber blocked in a read cancels the read first", "[kill][io]") {
  Pipe p;
  in_scheduler([&] {
    auto reader = ringlet::spawn([&] {
      char buf[32];
      return ringlet::io::read(p.r, buf, sizeof buf);
    });
    ringlet::sleep(5ms);
    CHECK(ringlet::detail::Scheduler::current()->reactor().in_flight() == 1);
    reader.kill();
    CHECK_THROWS_AS(reader.get(), ringlet::GreenletExit);
    CHECK(ringlet::detail::Scheduler::current()->reactor().in_flight() == 0);
    ringlet::io::write_all(p.w, "x", 1);
    char c = 0;
    CHECK(ringlet::io::read(p.r, &c, 1) == 1);
    CHECK(c == 'x');
  });
}

TEST_CASE("io: explicit deadlines, errors, EOF, poll", "[io]") {
  in_scheduler([] {
    Pipe p;
    char buf[8];
    auto t0 = ringlet::Clock::now();
    CHECK_THROWS_AS(ringlet::io::read(p.r, buf, sizeof buf, 20ms), std::system_error);
    CHECK(seconds_since(t0) < 1.0);
    std::error_code ec;
    CHECK(ringlet::io::read(p.r, buf, sizeof buf, 10ms, ec) == 0);
    CHECK(ec == std::errc::timed_out);
    CHECK(ringlet::io::read(-1, buf, sizeof buf, ringlet::Deadline::never(), ec) == 0);
    CHECK(ec == std::errc::bad_file_descriptor);
    CHECK(ringlet::io::poll(p.r, POLLIN, 10ms) == 0);

    auto writer = ringlet::spawn([&] {
      ringlet::sleep(10ms);
      ringlet::io::write_all(p.w, "hi", 2);
      close(p.w);
      p.w = -1;
    });
    CHECK((ringlet::io::poll(p.r, POLLIN) & POLLIN) != 0);
    CHECK(ringlet::io::read(p.r, buf, sizeof buf) == 2);
    writer.join();
    CHECK(ringlet::io::read(p.r, buf, sizeof buf) == 0);  // EOF is a value
  });
}

TEST_CASE("io::poll for reading and writing at once wakes on either", "[io]") {
  in_scheduler([] {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    char junk[4096] = {};
    while (::send(sv[0], junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }  // sv[0] can no longer write, and has nothing to read
    CHECK(ringlet::io::poll(sv[0], POLLIN | POLLOUT, 20ms) == 0);
    auto peer = ringlet::spawn([&] {
      ringlet::sleep(5ms);
      CHECK(::send(sv[1], "!", 1, 0) == 1);
    });
    short ev = ringlet::io::poll(sv[0], POLLIN | POLLOUT, 2s);
    CHECK((ev & POLLIN) != 0);
    peer.join();
    close(sv[0]);
    close(sv[1]);
  });
}

TEST_CASE("many fibers block on pipes concurrently", "[io]") {
  in_scheduler([] {
    constexpr int kPairs = 200;
    std::vector<std::unique_ptr<Pipe>> pipes;
    for (int i = 0; i < kPairs; ++i) pipes.push_back(std::make_unique<Pipe>());
    std::vector<ringlet::Greenlet<int>> readers;
    for (int i = 0; i < kPairs; ++i)
      readers.push_back(ringlet::spawn([&, i] {
        int v = 0;
        ringlet::io::read(pipes[i]->r, &v, sizeof v);
        return v;
      }));
    ringlet::sleep(5ms);
    for (int i = 0; i < kPairs; ++i) ringlet::io::write_all(pipes[i]->w, &i, sizeof i);
    for (int i = 0; i < kPairs; ++i) CHECK(readers[i].get() == i);
  });
}

TEST_CASE("both engines run the same program", "[backend]") {
  for (auto backend : {ringlet::Backend::IoUring, ringlet::Backend::Epoll}) {
    std::string engine;
    try {
      engine = in_scheduler(
          [] {
            Pipe p;
            auto r = ringlet::spawn([&] {
              char c;
              return ringlet::io::read(p.r, &c, 1, 1s);
            });
            ringlet::sleep(2ms);
            ringlet::io::write_all(p.w, "z", 1);
            CHECK(r.get() == 1);
            CHECK_THROWS_AS(([&] {
                              ringlet::Timeout t{5ms};
                              char c;
                              ringlet::io::read(p.r, &c, 1);
                            }()),
                            ringlet::Timeout::Expired);
            return std::string(ringlet::engine());
          },
          ringlet::RunOptions{.backend = backend});
    } catch (const std::runtime_error& e) {
      if (backend == ringlet::Backend::IoUring) RINGLET_SKIP(e.what());
      throw;
    }
    CHECK(engine == (backend == ringlet::Backend::IoUring ? "io_uring" : "epoll"));
  }
}

TEST_CASE("on a plain thread the calls block the thread", "[plain]") {
  CHECK(std::string(ringlet::engine()) == "none");
  auto t0 = ringlet::Clock::now();
  ringlet::sleep(20ms);
  CHECK(seconds_since(t0) >= 0.019);
  ringlet::yield();
  Pipe p;
  char c;
  CHECK_THROWS_AS(ringlet::io::read(p.r, &c, 1, 10ms), std::system_error);
  {
    ringlet::Timeout t{10ms};
    CHECK_THROWS_AS(ringlet::sleep(5s), ringlet::Timeout::Expired);
    CHECK_THROWS_AS(ringlet::io::read(p.r, &c, 1), ringlet::Timeout::Expired);
  }
  std::thread writer([&] {
    std::this_thread::sleep_for(10ms);
    CHECK(::write(p.w, "q", 1) == 1);
  });
  CHECK(ringlet::io::read(p.r, &c, 1) == 1);
  writer.join();
}

TEST_CASE("an idle scheduler sleeps: no CPU while every fiber waits", "[idle]") {
  double cpu = 0;
  in_scheduler([&] {
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 100; ++i) gs.push_back(ringlet::spawn([] { ringlet::sleep(300ms); }));
    ringlet::sleep(10ms);
    double c0 = cpu_seconds();
    ringlet::joinall(gs);
    cpu = cpu_seconds() - c0;
  });
  INFO("CPU seconds used while waiting 290 ms: " << cpu);
  CHECK(cpu < 0.05);
}

TEST_CASE("a fiber spinning on yield does not starve timers", "[scheduler]") {
  in_scheduler([] {
    bool stop = false;
    auto spinner = ringlet::spawn([&] {
      while (!stop) ringlet::yield();
    });
    auto t0 = ringlet::Clock::now();
    ringlet::sleep(10ms);
    double late = seconds_since(t0);
    stop = true;
    spinner.join();
    CHECK(late < 0.5);
  });
}

TEST_CASE("timer heap keeps order under random inserts and removals", "[timers]") {
  using ringlet::detail::TimerHeap;
  using ringlet::detail::TimerNode;
  std::mt19937 rng(7);
  std::vector<TimerNode> nodes(5000);
  TimerHeap heap;
  auto base = ringlet::Clock::now();
  for (auto& n : nodes) {
    n.when = base + std::chrono::microseconds(rng() % 1000);
    heap.push(&n);
  }
  for (std::size_t i = 0; i < nodes.size(); i += 3) heap.remove(&nodes[i]);
  ringlet::Clock::time_point last{};
  std::uint64_t last_seq = 0;
  std::size_t popped = 0;
  while (!heap.empty()) {
    TimerNode* n = heap.pop();
    CHECK_FALSE(n->queued());
    bool ordered = n->when > last || (n->when == last && n->seq > last_seq) || popped == 0;
    CHECK(ordered);
    last = n->when;
    last_seq = n->seq;
    ++popped;
  }
  CHECK(popped == nodes.size() - (nodes.size() + 2) / 3);
}

TEST_CASE("Deadline arithmetic saturates", "[time]") {
  ringlet::Deadline never;
  CHECK(never.is_never());
  CHECK(ringlet::Deadline(std::chrono::hours::max()).is_never());
  CHECK(ringlet::Deadline(-5s).passed());
  CHECK(ringlet::earliest(never, ringlet::Deadline(1s)) < never);
  CHECK(never.remaining() == ringlet::Clock::duration::max());
}

TEST_CASE("timeouts and kills racing completions lose no data", "[io][stress]") {
  in_scheduler([] {
    constexpr int kPipes = 8;
    std::vector<std::unique_ptr<Pipe>> pipes;
    for (int i = 0; i < kPipes; ++i) pipes.push_back(std::make_unique<Pipe>());
    long written = 0, read_total = 0, timeouts = 0, kills = 0;
    const auto stop_at = ringlet::Clock::now() + 600ms;  // bounded in time
    std::mt19937 rng(11);

    auto reader = [&](int p) {
      std::mt19937 local(static_cast<unsigned>(p) * 7919u);
      char buf[97];
      for (;;) {
        std::error_code ec;
        // A deadline of 0-300 µs: many reads are cancelled right as data arrives.
        auto n = ringlet::io::read(pipes[p]->r, buf, sizeof buf,
                                   std::chrono::microseconds(local() % 300), ec);
        read_total += static_cast<long>(n);  // counted before the next switch point
        if (ec == std::errc::timed_out) ++timeouts;
        else if (ec) FAIL(ec.message());
      }
    };
    std::vector<ringlet::Greenlet<void>> readers;
    for (int p = 0; p < kPipes; ++p) readers.push_back(ringlet::spawn(reader, p));

    while (ringlet::Clock::now() < stop_at) {
      const int p = static_cast<int>(rng() % kPipes);
      char chunk[64];
      const std::size_t n = 1 + rng() % sizeof chunk;
      ringlet::io::write_all(pipes[p]->w, chunk, n);
      written += static_cast<long>(n);
      if (rng() % 50 == 0) {  // kill a reader mid-read and start a new one on its pipe
        readers[p].kill();
        ++kills;
        readers[p] = ringlet::spawn(reader, p);
      }
      if (rng() % 4 == 0) ringlet::sleep(std::chrono::microseconds(rng() % 200));
      else ringlet::yield();
    }
    ringlet::sleep(20ms);  // let the readers drain
    for (auto& r : readers) r.kill();
    // Whatever no reader took is still in its pipe: nothing vanished, nothing was doubled.
    long left = 0;
    for (auto& p : pipes) {
      char buf[4096];
      while (ringlet::io::poll(p->r, POLLIN, 1ms) & POLLIN) {
        auto n = ::read(p->r, buf, sizeof buf);
        if (n <= 0) break;
        left += n;
      }
    }
    INFO("written " << written << " read " << read_total << " left " << left << " timeouts "
                    << timeouts << " kills " << kills);
    CHECK(read_total + left == written);
    CHECK(timeouts > 100);
    CHECK(kills > 5);
    CHECK(ringlet::detail::Scheduler::current()->reactor().in_flight() == 0);
  });
}
