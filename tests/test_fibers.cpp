// Fibers: run, spawn, join, get, kill, joinall/wait, fiber-local storage, deadlock report.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "internal/io.hpp"
#include "ringlet/detail/wait.hpp"
#include "ringlet/stats.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

TEST_CASE("run returns the main fiber's value and rethrows its exception", "[run]") {
  CHECK(ringlet::run([] { return 42; }) == 42);
  CHECK_THROWS_WITH(ringlet::run([]() -> int { throw std::runtime_error("boom"); }), "boom");
  ringlet::run([] {});  // void works too
}

TEST_CASE("run refuses to nest and spawn needs a scheduler", "[run]") {
  CHECK_THROWS_AS(ringlet::spawn([] {}), std::logic_error);
  in_scheduler([] { CHECK_THROWS_AS(ringlet::run([] {}), std::logic_error); });
}

TEST_CASE("ready fibers run in spawn order and yield is fair", "[scheduler]") {
  auto order = in_scheduler([] {
    std::vector<int> seen;
    std::vector<ringlet::Greenlet<void>> gs;
    for (int id = 0; id < 3; ++id)
      gs.push_back(ringlet::spawn([&seen, id] {
        for (int round = 0; round < 3; ++round) {
          seen.push_back(id);
          ringlet::yield();
        }
      }));
    ringlet::joinall(gs);
    return seen;
  });
  CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2, 0, 1, 2});
}

TEST_CASE("a spawned fiber starts only when the spawner switches", "[scheduler]") {
  in_scheduler([] {
    bool ran = false;
    auto g = ringlet::spawn([&] { ran = true; });
    CHECK_FALSE(ran);
    CHECK_FALSE(g.ready());
    g.join();
    CHECK(ran);
    CHECK(g.ready());
    CHECK(g.successful());
  });
}

TEST_CASE("get returns the value or rethrows the fiber's exception", "[greenlet]") {
  in_scheduler([] {
    auto ok = ringlet::spawn([](int a, int b) { return a * b; }, 6, 7);
    CHECK(ok.get() == 42);
    auto bad = ringlet::spawn([]() -> int { throw std::out_of_range("nope"); });
    CHECK_THROWS_AS(bad.get(), std::out_of_range);
    CHECK(bad.ready());
    CHECK_FALSE(bad.successful());
    auto moveonly = ringlet::spawn([] { return std::make_unique<int>(7); });
    std::unique_ptr<int> p = std::move(moveonly.get());
    CHECK(*p == 7);
    auto named = ringlet::spawn(ringlet::SpawnOptions{.name = "worker"}, [] {});
    CHECK(named.name() == "worker");
    CHECK(named.id() != 0);
    CHECK(ringlet::current().name() == "test-main");
    named.join();
  });
  CHECK_FALSE(ringlet::current().valid());
}

TEST_CASE("an exception nobody observes is reported with the fiber's name", "[greenlet]") {
  ringlet::test::StderrCapture cap;
  in_scheduler([] {
    {
      auto g = ringlet::spawn(ringlet::SpawnOptions{.name = "doomed"},
                              [] { throw std::runtime_error("lost cause"); });
      g.join();
    }  // handle dropped: report now
    ringlet::spawn(ringlet::SpawnOptions{.name = "orphan"},
                   [] { throw std::runtime_error("nobody listens"); });  // handle dropped first
    ringlet::sleep(5ms);
    auto seen = ringlet::spawn(ringlet::SpawnOptions{.name = "watched"},
                               [] { throw std::runtime_error("seen"); });
    CHECK_THROWS(seen.get());
    auto killed = ringlet::spawn(ringlet::SpawnOptions{.name = "killed"}, [] { ringlet::sleep(1s); });
    ringlet::yield();
    killed.kill();
  });
  std::string err = cap.text();
  CHECK(err.find("fiber 'doomed'") != std::string::npos);
  CHECK(err.find("lost cause") != std::string::npos);
  CHECK(err.find("fiber 'orphan'") != std::string::npos);
  CHECK(err.find("nobody listens") != std::string::npos);
  CHECK(err.find("'watched'") == std::string::npos);
  CHECK(err.find("'killed'") == std::string::npos);
}

TEST_CASE("kill a sleeping fiber", "[kill]") {
  in_scheduler([] {
    auto t0 = ringlet::Clock::now();
    auto g = ringlet::spawn([] { ringlet::sleep(10s); });
    ringlet::yield();  // let it park
    CHECK(g.kill());
    CHECK(g.ready());
    CHECK(seconds_since(t0) < 1.0);
    CHECK_THROWS_AS(g.get(), ringlet::GreenletExit);
  });
}

TEST_CASE("a killed fiber may catch GreenletExit, block while cleaning up, and exit", "[kill]") {
  in_scheduler([] {
    bool cleaned = false;
    auto g = ringlet::spawn([&] {
      try {
        ringlet::sleep(10s);
      } catch (const ringlet::GreenletExit&) {
        ringlet::sleep(10ms);  // blocking inside the handler is allowed
        CHECK(std::uncaught_exceptions() == 0);
        cleaned = true;
        throw;
      }
    });
    ringlet::yield();
    g.kill();
    CHECK(cleaned);
    CHECK_THROWS_AS(g.get(), ringlet::GreenletExit);
  });
}

TEST_CASE("kill of a finished, an unstarted and the current fiber", "[kill]") {
  in_scheduler([] {
    auto done = ringlet::spawn([] { return 1; });
    done.join();
    CHECK(done.kill());
    CHECK(done.get() == 1);  // still its value

    bool ran = false;
    auto unstarted = ringlet::spawn([&] { ran = true; });
    unstarted.kill();
    CHECK_FALSE(ran);
    CHECK_THROWS_AS(unstarted.get(), ringlet::GreenletExit);

    auto self = ringlet::spawn([] {
      ringlet::current().kill();
      return 5;  // never reached
    });
    CHECK_THROWS_AS(self.get(), ringlet::GreenletExit);

    auto later = ringlet::spawn([] { ringlet::sleep(10s); });
    ringlet::yield();
    CHECK_FALSE(later.kill(/*block=*/false));
    CHECK(later.join(1s));
  });
}

TEST_CASE("join with a deadline, joinall and wait", "[greenlet]") {
  in_scheduler([] {
    auto slow = ringlet::spawn([] { ringlet::sleep(200ms); });
    CHECK_FALSE(slow.join(20ms));
    CHECK(slow.join());

    std::vector<ringlet::Greenlet<int>> gs;
    for (int i = 0; i < 3; ++i)
      gs.push_back(ringlet::spawn([i] {
        ringlet::sleep(std::chrono::milliseconds(10 + 150 * i));
        return i;
      }));
    auto first = ringlet::wait(gs, 1);
    CHECK(first == std::vector<std::size_t>{0});
    CHECK_FALSE(ringlet::joinall(gs, 30ms));
    CHECK(ringlet::joinall(gs));
    CHECK(ringlet::wait(gs) == std::vector<std::size_t>{0, 1, 2});

    auto never = ringlet::spawn([] { ringlet::sleep(10s); });
    std::vector<ringlet::BasicGreenlet> mixed{gs[0], never};
    CHECK(ringlet::wait(mixed, 2, 20ms) == std::vector<std::size_t>{0});
    never.kill();
  });
}

TEST_CASE("100 000 fibers spawned and joined", "[scheduler]") {
  auto total = in_scheduler([] {
    std::vector<ringlet::Greenlet<int>> gs;
    gs.reserve(100000);
    for (int i = 0; i < 100000; ++i) gs.push_back(ringlet::spawn([i] { return i % 7; }));
    long sum = 0;
    for (auto& g : gs) sum += g.get();
    return sum;
  });
  long expected = 0;
  for (int i = 0; i < 100000; ++i) expected += i % 7;
  CHECK(total == expected);
}

TEST_CASE("daemon fibers do not keep run alive and are killed at the end", "[run]") {
  bool unwound = false;
  auto t0 = ringlet::Clock::now();
  ringlet::run([&] {
    ringlet::spawn(ringlet::SpawnOptions{.daemon = true}, [&] {
      struct Flag {
        bool& f;
        ~Flag() { f = true; }
      } flag{unwound};
      ringlet::sleep(1h);
    });
    ringlet::sleep(1ms);
  });
  CHECK(unwound);
  CHECK(seconds_since(t0) < 1.0);
}

TEST_CASE("run waits for every non-daemon fiber", "[run]") {
  int finished = 0;
  ringlet::run([&] {
    for (int i = 0; i < 5; ++i)
      ringlet::spawn([&] {
        ringlet::sleep(20ms);
        ++finished;
      });
  });
  CHECK(finished == 5);
}

TEST_CASE("deadlock: the main fiber gets a report naming every parked fiber", "[deadlock]") {
  std::string report;
  in_scheduler([&] {
    ringlet::BasicGreenlet a_handle;
    auto b = ringlet::spawn(ringlet::SpawnOptions{.name = "bravo"}, [&] { a_handle.join(); });
    auto a = ringlet::spawn(ringlet::SpawnOptions{.name = "alpha"}, [&] { b.join(); });
    a_handle = a;
    try {
      a.join();
      FAIL("join returned");
    } catch (const ringlet::DeadlockError& e) {
      report = e.what();
    }
    a.kill();
    b.kill();
  });
  INFO(report);
  CHECK(report.find("deadlock") != std::string::npos);
  CHECK(report.find("fiber 'alpha' (#") != std::string::npos);
  CHECK(report.find("fiber 'bravo' (#") != std::string::npos);
  CHECK(report.find("'test-main'") != std::string::npos);
  CHECK(report.find("waits in join of fiber 'bravo'") != std::string::npos);
  CHECK(report.find("waits in join of fiber 'alpha'") != std::string::npos);
}

TEST_CASE("deadlock after main returned: run throws and the stuck fiber unwinds", "[deadlock]") {
  bool unwound = false;
  try {
    ringlet::run([&] {
      ringlet::spawn(ringlet::SpawnOptions{.name = "forever"}, [&] {
        struct Flag {
          bool& f;
          ~Flag() { f = true; }
        } flag{unwound};
        ringlet::sleep_until(ringlet::Deadline::never());
      });
    });
    FAIL("run returned");
  } catch (const ringlet::DeadlockError& e) {
    CHECK(std::string(e.what()).find("fiber 'forever' (#2) waits in sleep") != std::string::npos);
  }
  CHECK(unwound);
}

TEST_CASE("fiber-local storage is per fiber and destroyed with it", "[fls]") {
  static int destroyed = 0;
  struct Counter {
    int n = 0;
    ~Counter() { ++destroyed; }
  };
  static ringlet::FiberLocal<Counter> local;
  destroyed = 0;
  in_scheduler([] {
    auto work = [](int times) {
      for (int i = 0; i < times; ++i) {
        ++local->n;
        ringlet::yield();
      }
      return local->n;
    };
    auto a = ringlet::spawn(work, 3);
    auto b = ringlet::spawn(work, 5);
    CHECK(a.get() == 3);
    CHECK(b.get() == 5);
    CHECK(destroyed == 2);
    CHECK(local->n == 0);  // main's own
  });
  CHECK(destroyed == 3);
}

TEST_CASE("exception state survives switches inside catch blocks", "[scheduler]") {
  in_scheduler([] {
    auto a = ringlet::spawn([] {
      try {
        throw std::runtime_error("a");
      } catch (const std::runtime_error&) {
        ringlet::sleep(5ms);  // b throws and catches meanwhile
        auto cur = std::current_exception();
        try {
          std::rethrow_exception(cur);
        } catch (const std::runtime_error& again) {
          return std::string(again.what());
        }
      }
      return std::string();
    });
    auto b = ringlet::spawn([] {
      try {
        throw std::logic_error("b");
      } catch (const std::logic_error&) {
        ringlet::sleep(10ms);  // a leaves its handler meanwhile
        return std::string(std::current_exception() ? "b-ok" : "lost");
      }
    });
    CHECK(a.get() == "a");
    CHECK(b.get() == "b-ok");
  });
}

TEST_CASE("fair_point: a fiber that never parks gives way after a slice, to timers and I/O too", "[scheduler][fair]") {
  in_scheduler([] {
    // A sleeper's timer and a reader's completion are found only by the loop: a fiber that
    // called yield() would run again before them; one at a fairness point does not.
    bool woke = false, read_done = false;
    int p[2];
    REQUIRE(::pipe(p) == 0);
    auto sleeper = ringlet::spawn([&] {
      ringlet::sleep(20ms);
      woke = true;
    });
    auto reader = ringlet::spawn([&] {
      char c = 0;
      using Op = ringlet::detail::IoRequest::Op;
      read_done = ringlet::detail::perform(ringlet::detail::buffer_request(Op::Read, p[0], &c, 1, 0, "test read"),
                                           ringlet::Deadline::never()).res == 1;
    });
    ringlet::yield();  // both parked now
    REQUIRE(::write(p[1], "x", 1) == 1);
    const std::uint64_t before = ringlet::stats().total.fair_yields;
    const auto t0 = std::chrono::steady_clock::now();
    long points = 0;
    while (!(woke && read_done) && seconds_since(t0) < 5) {
      ringlet::detail::fair_point();
      ++points;
    }
    CHECK(woke);
    CHECK(read_done);
    CHECK(seconds_since(t0) < 1);
    const std::uint64_t gave_way = ringlet::stats().total.fair_yields - before;
    CHECK(gave_way >= 1);
    // About one per slice (0.1 ms) of the 20 ms, not one per call.
    CHECK(gave_way < static_cast<std::uint64_t>(points) / 10);
    sleeper.join();
    reader.join();
    ::close(p[0]);
    ::close(p[1]);
  });
}
