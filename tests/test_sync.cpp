// Lock, RLock, Semaphore, BoundedSemaphore, Event, Condition: semantics, timeouts, kill,
// FIFO order, the seed scenarios, plain threads and two schedulers on two threads.
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

TEST_CASE("seed: a Lock keeps a bank balance from going negative", "[lock][seed]") {
  in_scheduler([] {
    ringlet::Lock lock;
    int balance = 100;
    int refused = 0;
    auto withdraw = [&](int amount) {
      std::lock_guard guard(lock);
      if (balance < amount) {
        ++refused;
        return;
      }
      ringlet::sleep(10ms);  // the other withdrawer runs meanwhile, and must wait
      balance -= amount;
      CHECK(balance >= 0);
    };
    auto a = ringlet::spawn(withdraw, 80);
    auto b = ringlet::spawn(withdraw, 80);
    ringlet::joinall(std::vector{a, b});
    CHECK(balance == 20);
    CHECK(refused == 1);
  });
}

TEST_CASE("Lock: try, timeout, ownership errors, FIFO hand-over", "[lock]") {
  in_scheduler([] {
    ringlet::Lock lock;
    CHECK_THROWS_AS(lock.release(), std::logic_error);
    CHECK(lock.try_acquire());
    CHECK(lock.locked());
    CHECK_FALSE(lock.try_acquire());
    auto other = ringlet::spawn([&] { return lock.acquire(20ms); });
    CHECK_FALSE(other.get());  // timed out: a value, not an exception
    auto thief = ringlet::spawn([&] { lock.release(); });
    CHECK_THROWS_AS(thief.get(), std::logic_error);

    std::vector<int> order;
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 5; ++i)
      gs.push_back(ringlet::spawn([&, i] {
        std::lock_guard g(lock);
        order.push_back(i);
      }));
    ringlet::sleep(5ms);  // all five wait, in spawn order
    lock.release();
    ringlet::joinall(gs);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK_FALSE(lock.locked());
    std::scoped_lock both(lock);  // Lockable
  });
}

TEST_CASE("Lock: kill and Timeout interrupt a wait; the lock stays consistent", "[lock]") {
  in_scheduler([] {
    ringlet::Lock lock;
    lock.acquire();
    auto killed = ringlet::spawn([&] { lock.acquire(); });
    auto timed = ringlet::spawn([&] {
      ringlet::Timeout t{10ms};
      lock.acquire();
    });
    ringlet::sleep(2ms);
    killed.kill();
    CHECK_THROWS_AS(killed.get(), ringlet::GreenletExit);
    CHECK_THROWS_AS(timed.get(), ringlet::Timeout::Expired);
    lock.release();
    CHECK(lock.try_acquire());  // nobody was handed a lock they are not there to release
    lock.release();
  });
}

TEST_CASE("RLock is reentrant for its holder only", "[lock]") {
  in_scheduler([] {
    ringlet::RLock r;
    r.acquire();
    r.acquire();
    auto other = ringlet::spawn([&] { return r.acquire(10ms); });
    CHECK_FALSE(other.get());
    r.release();
    CHECK(r.locked());
    r.release();
    CHECK_FALSE(r.locked());
    CHECK_THROWS_AS(r.release(), std::logic_error);
  });
}

TEST_CASE("seed: Semaphore(2) lets two of seven workers in at a time", "[semaphore][seed]") {
  double took = 0;
  int peak = 0;
  in_scheduler([&] {
    ringlet::Semaphore room{2};
    int inside = 0;
    auto t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 7; ++i)
      gs.push_back(ringlet::spawn([&] {
        std::lock_guard g(room);
        peak = std::max(peak, ++inside);
        ringlet::sleep(200ms);
        --inside;
      }));
    ringlet::joinall(gs);
    took = seconds_since(t0);
    CHECK(room.value() == 2);
  });
  CHECK(peak == 2);
  CHECK(took >= 0.79);
  CHECK(took < 1.2);
}

TEST_CASE("Semaphore: timeouts, FIFO, and BoundedSemaphore over-release", "[semaphore]") {
  in_scheduler([] {
    ringlet::Semaphore s{0};
    CHECK_FALSE(s.try_acquire());
    CHECK_FALSE(s.acquire(10ms));
    std::vector<int> order;
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 3; ++i)
      gs.push_back(ringlet::spawn([&, i] {
        s.acquire();
        order.push_back(i);
      }));
    ringlet::sleep(2ms);
    s.release(3);
    ringlet::joinall(gs);
    CHECK(order == std::vector<int>{0, 1, 2});
    CHECK(s.value() == 0);

    ringlet::BoundedSemaphore b{1};
    CHECK_THROWS_AS(b.release(), std::logic_error);
    b.acquire();
    b.release();
    CHECK(b.value() == 1);
  });
}

TEST_CASE("seed: an Event set after 0.3 s releases three waiters", "[event][seed]") {
  in_scheduler([] {
    ringlet::Event ev;
    auto t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<double>> waiters;
    for (int i = 0; i < 3; ++i)
      waiters.push_back(ringlet::spawn([&] {
        CHECK(ev.wait());
        return seconds_since(t0);
      }));
    auto setter = ringlet::spawn([&] {
      ringlet::sleep(300ms);
      ev.set();
    });
    for (auto& w : waiters) {
      double at = w.get();
      CHECK(at >= 0.299);
      CHECK(at < 0.6);
    }
    setter.join();
    CHECK(ev.is_set());
    CHECK(ev.wait(1ms));  // set: returns at once
    ev.clear();
    CHECK_FALSE(ev.wait(10ms));
  });
}

TEST_CASE("seed: Condition.notify(2) wakes exactly two of five", "[condition][seed]") {
  in_scheduler([] {
    ringlet::Lock lock;
    ringlet::Condition cond;
    int woke = 0;
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 5; ++i)
      gs.push_back(ringlet::spawn([&] {
        std::unique_lock g(lock);
        if (cond.wait(g, 2s)) ++woke;
      }));
    ringlet::sleep(10ms);
    {
      std::lock_guard g(lock);
      CHECK(cond.notify(2) == 2);
    }
    ringlet::sleep(10ms);
    CHECK(woke == 2);
    {
      std::lock_guard g(lock);
      CHECK(cond.notify_all() == 3);
    }
    ringlet::joinall(gs);
    CHECK(woke == 5);
  });
}

TEST_CASE("Condition: predicate waits, timeouts and kills leave the lock held", "[condition]") {
  in_scheduler([] {
    ringlet::Lock lock;
    ringlet::Condition cond;
    int items = 0;
    auto consumer = ringlet::spawn([&] {
      std::unique_lock g(lock);
      CHECK(cond.wait(g, [&] { return items >= 3; }));
      return items;
    });
    for (int i = 0; i < 3; ++i) {
      ringlet::sleep(2ms);
      std::lock_guard g(lock);
      ++items;
      cond.notify();
    }
    CHECK(consumer.get() == 3);

    std::unique_lock g(lock);
    CHECK_FALSE(cond.wait(g, 10ms));
    CHECK(lock.locked());  // held again after the timeout
    g.unlock();
    CHECK_THROWS_AS(cond.wait(lock), std::logic_error);  // not holding it

    auto victim = ringlet::spawn([&] {
      std::unique_lock held(lock);
      cond.wait(held);  // killed here; the guard's unlock must find the lock held
    });
    ringlet::sleep(2ms);
    victim.kill();
    CHECK_THROWS_AS(victim.get(), ringlet::GreenletExit);
    CHECK_FALSE(lock.locked());
  });
}

TEST_CASE("a Lock cycle among fibers is reported as a deadlock", "[lock][deadlock]") {
  std::string report;
  in_scheduler([&] {
    ringlet::Lock a, b;
    auto one = ringlet::spawn(ringlet::SpawnOptions{.name = "one"}, [&] {
      std::lock_guard ga(a);
      ringlet::sleep(1ms);
      std::lock_guard gb(b);
    });
    auto two = ringlet::spawn(ringlet::SpawnOptions{.name = "two"}, [&] {
      std::lock_guard gb(b);
      ringlet::sleep(1ms);
      std::lock_guard ga(a);
    });
    try {
      one.join();
    } catch (const ringlet::DeadlockError& e) {
      report = e.what();
    }
    one.kill();
    two.kill();
  });
  CHECK(report.find("fiber 'one'") != std::string::npos);
  CHECK(report.find("waits in Lock::acquire") != std::string::npos);
}

TEST_CASE("primitives work from plain threads and between a thread and a fiber", "[plain][lock]") {
  ringlet::Lock lock;
  ringlet::Event go;
  int counter = 0;
  std::thread t([&] {
    go.wait();  // a plain thread parks on a futex
    for (int i = 0; i < 1000; ++i) {
      std::lock_guard g(lock);
      ++counter;
    }
  });
  in_scheduler([&] {
    ringlet::sleep(5ms);
    go.set();
    for (int i = 0; i < 1000; ++i) {
      std::lock_guard g(lock);
      ++counter;
      if (i % 100 == 0) ringlet::yield();
    }
  });
  t.join();
  CHECK(counter == 2000);
  ringlet::Semaphore s{0};
  CHECK_FALSE(s.acquire(10ms));  // a plain-thread timeout
  {
    ringlet::Timeout scope{10ms};
    CHECK_THROWS_AS(s.acquire(), ringlet::Timeout::Expired);
  }
}

TEST_CASE("two schedulers on two threads contend for one Lock", "[lock][cross]") {
  ringlet::Lock lock;
  long shared = 0;
  auto worker = [&] {
    ringlet::run([&] {
      std::vector<ringlet::Greenlet<void>> gs;
      for (int f = 0; f < 4; ++f)
        gs.push_back(ringlet::spawn([&] {
          for (int i = 0; i < 2000; ++i) {
            std::lock_guard g(lock);
            long v = shared;
            if (i % 64 == 0) ringlet::yield();  // hold it across a switch now and then
            shared = v + 1;
          }
        }));
      ringlet::joinall(gs);
    });
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  CHECK(shared == 2 * 4 * 2000);
}

TEST_CASE("timeouts racing notifies across two schedulers lose and duplicate nothing", "[semaphore][cross][stress]") {
  constexpr int kPermits = 3;
  ringlet::Semaphore sem{kPermits};
  std::atomic<int> inside{0}, peak{0}, acquired{0}, timeouts{0};
  auto deadline = ringlet::Clock::now() + 1500ms;  // the stress loop is bounded in time
  auto worker = [&](unsigned seed) {
    ringlet::run([&, seed] {
      std::vector<ringlet::Greenlet<void>> gs;
      for (int f = 0; f < 8; ++f)
        gs.push_back(ringlet::spawn([&, rng = seed * 31u + static_cast<unsigned>(f)]() mutable {
          while (ringlet::Clock::now() < deadline) {
            rng = rng * 1103515245u + 12345u;
            auto wait = std::chrono::microseconds(rng % 300);
            if (!sem.acquire(wait)) {
              ++timeouts;
              continue;
            }
            int now = ++inside;
            int p = peak.load();
            while (now > p && !peak.compare_exchange_weak(p, now)) {
            }
            ++acquired;
            if (rng & 1) ringlet::yield();
            --inside;
            sem.release();
          }
        }));
      ringlet::joinall(gs);
    });
  };
  std::thread a(worker, 1u), b(worker, 2u);
  a.join();
  b.join();
  INFO("acquired " << acquired << " timeouts " << timeouts << " peak " << peak);
  CHECK(peak <= kPermits);
  CHECK(sem.value() == kPermits);  // every permit came back exactly once
  CHECK(acquired > 1000);
}

TEST_CASE("kill and Timeout interrupt every kind of wait; the primitive stays usable", "[sync][kill]") {
  in_scheduler([] {
    ringlet::Semaphore sem{0};
    ringlet::Event ev;
    ringlet::Queue<int> empty_q;
    ringlet::Queue<int> full_q{1};
    full_q.put(0);
    ringlet::AsyncResult<int> never;
    std::vector<std::function<void()>> waits{
        [&] { sem.acquire(); },         [&] { ev.wait(); },
        [&] { empty_q.get(); },         [&] { full_q.put(1); },
        [&] { full_q.join(); },         [&] { never.wait(); },
    };
    for (auto& wait : waits) {
      auto g = ringlet::spawn(wait);
      ringlet::sleep(1ms);
      g.kill();
      CHECK_THROWS_AS(g.get(), ringlet::GreenletExit);
      auto t = ringlet::spawn([&] {
        ringlet::Timeout scope{2ms};
        wait();
      });
      CHECK_THROWS_AS(t.get(), ringlet::Timeout::Expired);
    }
    // Nothing was consumed or handed to the dead waiters.
    sem.release();
    CHECK(sem.try_acquire());
    CHECK(full_q.size() == 1);
    CHECK(*full_q.try_get() == 0);
    full_q.task_done();
    CHECK(full_q.join(10ms));
    empty_q.put(5);
    CHECK(*empty_q.get(10ms) == 5);
  });
}
