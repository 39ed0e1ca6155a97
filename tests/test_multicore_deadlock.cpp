// The run-wide deadlock check on two cores: a join cycle, fibers of two cores waiting on each
// other's Lock or Event, and the cases that are not a deadlock (a Queue filled after a sleep,
// a baton passed with no timer anywhere). Also run by the ThreadSanitizer build.
#include <memory>
#include <mutex>
#include <string>

#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::two_cores;

TEST_CASE("multicore: a join cycle across two cores is a deadlock: main gets it, then the rest is killed",
          "[multicore]") {
  std::string main_saw;
  std::string run_threw;
  try {
    ringlet::run(
        [&main_saw] {
          struct Shared {
            ringlet::Event go;
            ringlet::Greenlet<void> b;
          };
          auto sh = std::make_shared<Shared>();
          // a on core 1 joins b; b on core 0 joins a (b is set before a looks at it).
          auto a = ringlet::spawn_on(1, ringlet::SpawnOptions{"a-joins-b"}, [sh] {
            sh->go.wait();
            sh->b.join();
          });
          sh->b = ringlet::spawn_on(0, ringlet::SpawnOptions{"b-joins-a"}, [a] { a.join(); });
          sh->go.set();
          try {
            a.join();
          } catch (const ringlet::DeadlockError& e) {
            main_saw = e.what();
          }
        },
        two_cores());
  } catch (const ringlet::DeadlockError& e) {
    run_threw = e.what();
  }
  INFO("main saw: " << main_saw);
  CHECK_THAT(main_saw, Catch::Contains("every fiber is parked and nothing can wake them"));
  CHECK_THAT(main_saw, Catch::Contains("fiber 'main' (#1) waits in join of fiber 'a-joins-b' (#"));
  CHECK_THAT(main_saw, Catch::Contains(", core 1)"));
  CHECK_THAT(main_saw, Catch::Contains("fiber 'a-joins-b' (#"));
  CHECK_THAT(main_saw, Catch::Contains("fiber 'b-joins-a' (#"));
  CHECK_THAT(main_saw, Catch::Contains("(core 0)"));
  CHECK_THAT(main_saw, Catch::Contains("(core 1)"));
  // main returned; a and b still wait on each other: killed, and run() says so.
  INFO("run threw: " << run_threw);
  CHECK_THAT(run_threw, Catch::Contains("fiber 'a-joins-b'"));
  CHECK_THAT(run_threw, Catch::Contains("fiber 'b-joins-a'"));
}

TEST_CASE("multicore: fibers of two cores waiting on each other's Lock or Event are a deadlock",
          "[multicore]") {
  SECTION("two Locks taken in opposite orders") {
    std::string saw;
    ringlet::run(
        [&saw] {
          auto a = std::make_shared<ringlet::Lock>();
          auto b = std::make_shared<ringlet::Lock>();
          auto has_a = std::make_shared<ringlet::Event>();
          auto has_b = std::make_shared<ringlet::Event>();
          auto x = ringlet::spawn_on(0, [=] {
            std::lock_guard ga(*a);
            has_a->set();
            has_b->wait();
            std::lock_guard gb(*b);
          });
          auto y = ringlet::spawn_on(1, [=] {
            std::lock_guard gb(*b);
            has_b->set();
            has_a->wait();
            std::lock_guard ga(*a);
          });
          try {
            x.join();
          } catch (const ringlet::DeadlockError& e) {
            saw = e.what();
          }
          // Free them: the kills unwind both (each lock_guard lets go).
          x.kill();
          y.kill();
        },
        two_cores());
    INFO(saw);
    CHECK_THAT(saw, Catch::Contains("fiber 'main' (#1) waits in join"));
    CHECK_THAT(saw, Catch::Contains("waits in Lock::acquire (core 0)"));
    CHECK_THAT(saw, Catch::Contains("waits in Lock::acquire (core 1)"));
  }
  SECTION("two Events, each set only after the other") {
    std::string saw;
    ringlet::run(
        [&saw] {
          auto e1 = std::make_shared<ringlet::Event>();
          auto e2 = std::make_shared<ringlet::Event>();
          auto x = ringlet::spawn_on(0, [=] {
            e1->wait();
            e2->set();
          });
          auto y = ringlet::spawn_on(1, [=] {
            e2->wait();
            e1->set();
          });
          try {
            x.join();
          } catch (const ringlet::DeadlockError& e) {
            saw = e.what();
          }
          x.kill();
          y.kill();
        },
        two_cores());
    INFO(saw);
    CHECK_THAT(saw, Catch::Contains("waits in Event::wait (core 0)"));
    CHECK_THAT(saw, Catch::Contains("waits in Event::wait (core 1)"));
    CHECK_THAT(saw, Catch::Contains("fiber 'main' (#1) waits in join"));
  }
}

TEST_CASE("multicore: a core waiting on a Queue another core fills after a sleep is no deadlock",
          "[multicore]") {
  // Core 0 sleeps (a timer), puts, and joins; core 1 waits in get with no timer of its own.
  // Every put wakes core 1 from core 0 just before core 0 goes quiet in its join: the
  // moment a check that looked at the cores one by one would call a deadlock.
  for (int round = 0; round < 50; ++round) {
    CAPTURE(round);
    const int got = ringlet::run(
        [round] {
          auto q = std::make_shared<ringlet::Queue<int>>();
          auto consumer = ringlet::spawn_on(1, [q] { return *q->get(); });
          ringlet::sleep(200ms);
          q->put(round);
          return consumer.get();
        },
        two_cores());
    CHECK(got == round);
  }
}

TEST_CASE("multicore: a baton passed between cores with no timer anywhere is never called a deadlock",
          "[multicore][stress]") {
  // Each side parks on a primitive with no deadline, so every core goes quiet between hand-
  // offs and the run-wide check runs on each: any false verdict ends main with DeadlockError.
  ringlet::run(
      [] {
        auto ping = std::make_shared<ringlet::Semaphore>(0);
        auto pong = std::make_shared<ringlet::Semaphore>(0);
        constexpr int kRounds = 20000;
        auto other = ringlet::spawn_on(1, [=] {
          for (int i = 0; i < kRounds; ++i) {
            ping->acquire();
            pong->release();
          }
        });
        auto joiner = ringlet::spawn_on(0, [other] { other.join(); });  // a cross-core join, parked throughout
        for (int i = 0; i < kRounds; ++i) {
          ping->release();
          pong->acquire();
        }
        joiner.join();
      },
      two_cores());
}
