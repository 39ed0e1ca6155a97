// Queue, AsyncResult, Pool/Group, ThreadPool.
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

TEST_CASE("seed: producer and consumer through Queue(5)", "[queue][seed]") {
  in_scheduler([] {
    ringlet::Queue<int> q{5};
    std::size_t max_seen = 0;
    auto producer = ringlet::spawn([&] {
      for (int i = 0; i < 100; ++i) {
        q.put(i);
        max_seen = std::max(max_seen, q.size());
      }
      q.close();
    });
    std::vector<int> got;
    while (auto v = q.get()) {
      got.push_back(*v);
      if (got.size() % 7 == 0) ringlet::sleep(1ms);  // a slow consumer: the producer waits
    }
    producer.join();
    std::vector<int> want(100);
    for (int i = 0; i < 100; ++i) want[i] = i;
    CHECK(got == want);
    CHECK(max_seen <= 5);
    CHECK(q.closed());
  });
}

TEST_CASE("Queue: try, timeouts, full/empty, close semantics", "[queue]") {
  in_scheduler([] {
    ringlet::Queue<std::string> q{2};
    CHECK(q.empty());
    CHECK_FALSE(q.try_get());
    CHECK_FALSE(q.get(10ms));  // timed out
    CHECK_FALSE(q.closed());
    CHECK(q.try_put("a"));
    CHECK(q.put("b", 10ms));
    CHECK(q.full());
    CHECK_FALSE(q.try_put("c"));
    CHECK_FALSE(q.put("c", 10ms));
    CHECK(q.size() == 2);
    auto blocked = ringlet::spawn([&] { q.put("late"); });
    ringlet::sleep(2ms);
    q.close();
    CHECK_THROWS_AS(blocked.get(), ringlet::QueueClosed);
    CHECK_THROWS_AS(q.put("x"), ringlet::QueueClosed);
    CHECK(*q.get() == "a");  // what was in it drains first
    CHECK(*q.get() == "b");
    CHECK_FALSE(q.get());  // then "closed"
  });
}

TEST_CASE("Queue: FIFO getters, task_done/join, move-only items, Lifo and Priority", "[queue]") {
  in_scheduler([] {
    ringlet::Queue<std::unique_ptr<int>> q;
    std::vector<int> who;
    std::vector<ringlet::Greenlet<void>> getters;
    for (int i = 0; i < 3; ++i)
      getters.push_back(ringlet::spawn([&, i] {
        auto item = q.get();
        who.push_back(i * 100 + **item);
        q.task_done();
      }));
    ringlet::sleep(2ms);
    for (int v = 1; v <= 3; ++v) q.put(std::make_unique<int>(v));
    CHECK(q.join(1s));
    CHECK(who == std::vector<int>{1, 102, 203});  // the longest waiter gets the first item
    CHECK_THROWS_AS(q.task_done(), std::logic_error);

    ringlet::LifoQueue<int> lifo;
    for (int v : {1, 2, 3}) lifo.put(v);
    CHECK(*lifo.get() == 3);
    ringlet::PriorityQueue<int> pq;
    for (int v : {5, 1, 4, 2}) pq.put(v);
    CHECK(*pq.get() == 1);
    CHECK(*pq.get() == 2);
    CHECK(*pq.get() == 4);
  });
}

TEST_CASE("Queue between two schedulers with racing timeouts loses and duplicates nothing", "[queue][cross][stress]") {
  ringlet::Queue<int> q{8};
  constexpr int kItems = 20000;
  std::vector<int> seen(kItems, 0);
  std::mutex seen_mu;
  std::atomic<int> put_timeouts{0}, get_timeouts{0};
  std::thread producer([&] {
    ringlet::run([&] {
      std::vector<ringlet::Greenlet<void>> gs;
      for (int f = 0; f < 4; ++f)
        gs.push_back(ringlet::spawn([&, f] {
          for (int i = f; i < kItems; i += 4)
            while (!q.put(i, std::chrono::microseconds(50 + i % 200))) ++put_timeouts;
        }));
      ringlet::joinall(gs);
      q.close();
    });
  });
  std::thread consumer([&] {
    ringlet::run([&] {
      std::vector<ringlet::Greenlet<void>> gs;
      for (int f = 0; f < 4; ++f)
        gs.push_back(ringlet::spawn([&] {
          for (;;) {
            auto v = q.get(std::chrono::microseconds(100));
            if (!v) {
              if (q.closed() && q.empty()) return;
              ++get_timeouts;
              continue;
            }
            std::lock_guard g(seen_mu);
            ++seen[static_cast<std::size_t>(*v)];
          }
        }));
      ringlet::joinall(gs);
    });
  });
  producer.join();
  consumer.join();
  INFO("put timeouts " << put_timeouts << ", get timeouts " << get_timeouts);
  int missing = 0, dup = 0;
  for (int c : seen) {
    missing += c == 0;
    dup += c > 1;
  }
  CHECK(missing == 0);
  CHECK(dup == 0);
}

TEST_CASE("AsyncResult: value, exception, timeout, set twice", "[asyncresult]") {
  in_scheduler([] {
    ringlet::AsyncResult<int> r;
    CHECK_FALSE(r.ready());
    CHECK_FALSE(r.wait(5ms));
    CHECK_THROWS_AS(r.get(5ms), std::system_error);
    ringlet::spawn([r] {
      ringlet::sleep(5ms);
      r.set(42);
    });
    CHECK(r.get() == 42);
    CHECK(r.successful());
    CHECK_THROWS_AS(r.set(1), std::logic_error);

    ringlet::AsyncResult<void> bad;
    bad.set_exception(std::make_exception_ptr(std::runtime_error("nope")));
    CHECK_THROWS_WITH(bad.get(), "nope");
  });
}

TEST_CASE("AsyncResult::wait_uninterruptible outlasts a kill and a Timeout", "[asyncresult][threadpool]") {
  in_scheduler([] {
    ringlet::ThreadPool pool{1};
    std::atomic<bool> job_done{false};
    bool waited_out = false;
    auto waiter = ringlet::spawn([&] {
      ringlet::Timeout t{10ms};
      auto r = pool.submit([&] {
        ::usleep(100'000);
        job_done.store(true);
      });
      r.wait_uninterruptible();  // neither the Timeout nor the kill ends it
      waited_out = job_done.load();
      ringlet::yield();  // the next switch point raises the pending kill
      waited_out = false;
    });
    ringlet::sleep(20ms);
    const auto t0 = ringlet::Clock::now();
    CHECK(waiter.kill(true, ringlet::Deadline{2s}));
    CHECK(seconds_since(t0) >= 0.05);  // the kill waited for the job
    CHECK(waited_out);
    CHECK(job_done.load());
  });
}

TEST_CASE("AsyncResult callbacks run in a fiber of the waiting side, not in the setter", "[asyncresult]") {
  in_scheduler([] {
    ringlet::AsyncResult<std::string> r;
    ringlet::Event done;
    std::string ran_in, got;
    r.add_done_callback([&](const ringlet::AsyncResult<std::string>& res) {
      ran_in = ringlet::current().name();
      got = res.get();
      done.set();
    });
    auto setter = ringlet::spawn(ringlet::SpawnOptions{.name = "setter"}, [r] { r.set("hello"); });
    setter.join();
    CHECK(done.wait(1s));
    CHECK(got == "hello");
    CHECK(ran_in == "callback");

    // Set from a plain thread: the callback still runs here, in a fiber.
    ringlet::AsyncResult<int> remote;
    ringlet::Event remote_done;
    int value = 0;
    remote.add_done_callback([&](const auto& res) {
      value = res.get();
      remote_done.set();
    });
    std::thread t([remote] { remote.set(7); });
    CHECK(remote_done.wait(2s));
    t.join();
    CHECK(value == 7);
  });
}

TEST_CASE("seed: Pool(4).map over 20 jobs", "[pool][seed]") {
  in_scheduler([] {
    ringlet::Pool pool{4};
    int running = 0, peak = 0;
    std::vector<int> inputs(20);
    for (int i = 0; i < 20; ++i) inputs[i] = i;
    auto t0 = ringlet::Clock::now();
    auto squares = pool.map(
        [&](int x) {
          peak = std::max(peak, ++running);
          ringlet::sleep(20ms);
          --running;
          return x * x;
        },
        inputs);
    double took = seconds_since(t0);
    CHECK(peak == 4);
    CHECK(took >= 0.099);  // 20 jobs of 20 ms, 4 at a time
    CHECK(took < 0.5);
    for (int i = 0; i < 20; ++i) CHECK(squares[i] == i * i);
    CHECK(pool.free_count() == 4);
  });
}

TEST_CASE("Pool: spawn waits while full; imap_unordered; kill; Group", "[pool]") {
  in_scheduler([] {
    ringlet::Pool pool{2};
    auto a = pool.spawn([] { ringlet::sleep(50ms); });
    auto b = pool.spawn([] { ringlet::sleep(50ms); });
    CHECK(pool.free_count() == 0);
    auto t0 = ringlet::Clock::now();
    auto c = pool.spawn([] {});  // parks until a slot frees
    CHECK(seconds_since(t0) >= 0.045);
    CHECK(pool.join(1s));

    // Two slots: 40 and 5 start; 15 starts when 5 ends and finishes at 20, well before 40.
    std::vector<int> delays{40, 5, 15};
    auto results = pool.imap_unordered(
        [](int ms) {
          ringlet::sleep(std::chrono::milliseconds(ms));
          if (ms == 15) throw std::runtime_error("fifteen");
          return ms;
        },
        delays);
    CHECK(*results.next() == 5);
    CHECK_THROWS_WITH(results.next(), "fifteen");
    CHECK(*results.next() == 40);
    CHECK_FALSE(results.next());

    ringlet::Group group;
    for (int i = 0; i < 5; ++i) group.spawn([] { ringlet::sleep(10s); });
    CHECK(group.size() == 5);
    group.kill();
    CHECK(group.size() == 0);
    CHECK_THROWS_AS(ringlet::Pool(0), std::invalid_argument);
  });
}

TEST_CASE("a Pool that ends kills and waits for its fibers, then its own kill is raised", "[pool]") {
  in_scheduler([] {
    int unwound = 0;
    {
      ringlet::Pool pool{3};
      for (int i = 0; i < 3; ++i)
        pool.spawn([&] {
          struct Count {
            int& n;
            ~Count() { ++n; }
          } c{unwound};
          ringlet::sleep(10s);
        });
      auto results = pool.imap_unordered([](int x) { ringlet::sleep(10s); return x; }, std::vector<int>{1, 2});
      ringlet::yield();
    }  // no fiber outlives the pool it ran in
    CHECK(unwound == 3);

    // A fiber killed while its pool's destructor waits still dies, after the cleanup.
    int cleaned = 0;
    auto owner = ringlet::spawn([&] {
      ringlet::Pool pool{1};
      pool.spawn([&] {
        try {
          ringlet::sleep(10s);
        } catch (const ringlet::GreenletExit&) {
          ringlet::sleep(20ms);  // slow cleanup: the owner is killed meanwhile
          ++cleaned;
          throw;
        }
      });
      ringlet::sleep(10s);
    });
    ringlet::sleep(2ms);
    owner.kill(false);
    ringlet::sleep(5ms);
    owner.kill(false);  // arrives while ~Pool waits for the slow cleanup
    CHECK(owner.join(2s));
    CHECK_THROWS_AS(owner.get(), ringlet::GreenletExit);
    CHECK(cleaned == 1);

    // An expired Timeout does not cut the pool's cleanup short either.
    bool expired = false;
    try {
      ringlet::Timeout t{5ms};
      ringlet::Pool pool{1};
      pool.spawn([&] {
        try {
          ringlet::sleep(10s);
        } catch (const ringlet::GreenletExit&) {
          ringlet::sleep(20ms);
          ++cleaned;
          throw;
        }
      });
      ringlet::sleep(10s);
    } catch (const ringlet::Timeout::Expired&) {
      expired = true;
    }
    CHECK(expired);
    CHECK(cleaned == 2);
  });
}

TEST_CASE("seed: a ThreadPool job blocks an OS thread while fibers keep running", "[threadpool][seed]") {
  in_scheduler([] {
    ringlet::ThreadPool pool{2};
    int ticks = 0;
    auto ticker = ringlet::spawn([&] {
      for (int i = 0; i < 30; ++i) {
        ringlet::sleep(10ms);
        ++ticks;
      }
    });
    auto t0 = ringlet::Clock::now();
    auto job = pool.submit([](int ms) {
      ::usleep(static_cast<useconds_t>(ms) * 1000);  // a truly blocking call
      return ms;
    }, 300);
    CHECK(job.get() == 300);
    CHECK(seconds_since(t0) >= 0.299);
    CHECK(ticks >= 20);  // the scheduler was never blocked
    ticker.join();

    auto failing = pool.submit([] { throw std::runtime_error("in a thread"); });
    CHECK_THROWS_WITH(failing.get(), "in a thread");
    CHECK_FALSE(pool.submit([] { ::usleep(200000); }).wait(10ms));
  });
}
