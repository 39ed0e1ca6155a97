// Synchronisation: uncontended Lock, a Lock handed back and forth between two fibers, and
// Queue<int> throughput, each against Boost.Fiber's mutex / buffered_channel in the same
// binary; and a ThreadPool round trip against std::async.
#include <boost/fiber/all.hpp>
#include <future>
#include <ringlet/ringlet.hpp>

#include "common.hpp"

namespace {

constexpr int kRuns = 7;
constexpr long kOps = 2'000'000;

template <class Fn>
double ns_per(long n, Fn fn) {
  auto t0 = bench::Clock::now();
  fn();
  return bench::seconds(t0, bench::Clock::now()) * 1e9 / static_cast<double>(n);
}

double ringlet_uncontended() {
  return ringlet::run([] {
    ringlet::Lock lock;
    return ns_per(kOps, [&] {
      for (long i = 0; i < kOps; ++i) {
        lock.acquire();
        lock.release();
      }
    });
  });
}

double boost_uncontended() {
  boost::fibers::mutex m;
  return ns_per(kOps, [&] {
    for (long i = 0; i < kOps; ++i) {
      m.lock();
      m.unlock();
    }
  });
}

// Each fiber: lock, yield inside, unlock. With the other waiting, every release hands the
// lock over and every acquire parks: one hand-off per iteration of each fiber.
constexpr long kHandoffs = 400'000;

double ringlet_handoff() {
  return ringlet::run([] {
    ringlet::Lock lock;
    auto body = [&] {
      for (long i = 0; i < kHandoffs / 2; ++i) {
        std::lock_guard g(lock);
        ringlet::yield();
      }
    };
    return ns_per(kHandoffs, [&] {
      auto a = ringlet::spawn(body);
      auto b = ringlet::spawn(body);
      a.join();
      b.join();
    });
  });
}

double boost_handoff() {
  boost::fibers::mutex m;
  auto body = [&] {
    for (long i = 0; i < kHandoffs / 2; ++i) {
      std::lock_guard g(m);
      boost::this_fiber::yield();
    }
  };
  return ns_per(kHandoffs, [&] {
    boost::fibers::fiber a(body), b(body);
    a.join();
    b.join();
  });
}

constexpr long kItems = 2'000'000;
constexpr std::size_t kCapacity = 128;

double ringlet_queue() {
  return ringlet::run([] {
    ringlet::Queue<int> q{kCapacity};
    double ns = ns_per(kItems, [&] {
      auto producer = ringlet::spawn([&] {
        for (long i = 0; i < kItems; ++i) q.put(static_cast<int>(i));
      });
      long sum = 0;
      for (long i = 0; i < kItems; ++i) sum += *q.get();
      producer.join();
      if (sum != kItems * (kItems - 1) / 2) std::abort();
    });
    return 1e9 / ns;  // items per second
  });
}

double boost_queue() {
  boost::fibers::buffered_channel<int> ch{kCapacity};
  double ns = ns_per(kItems, [&] {
    boost::fibers::fiber producer([&] {
      for (long i = 0; i < kItems; ++i) ch.push(static_cast<int>(i));
    });
    long sum = 0;
    for (long i = 0; i < kItems; ++i) sum += ch.value_pop();
    producer.join();
    if (sum != kItems * (kItems - 1) / 2) std::abort();
  });
  return 1e9 / ns;
}

constexpr long kRoundTrips = 20'000;

double threadpool_roundtrip() {
  ringlet::ThreadPool pool{1};
  return ringlet::run([&] {
    return ns_per(kRoundTrips, [&] {
      for (long i = 0; i < kRoundTrips; ++i) pool.submit([] { return 1; }).get();
    });
  });
}

double async_roundtrip() {
  return ns_per(kRoundTrips / 10, [] {
    for (long i = 0; i < kRoundTrips / 10; ++i) std::async(std::launch::async, [] { return 1; }).get();
  });
}

}  // namespace

int main() {
  double ru = bench::median_of(kRuns, ringlet_uncontended);
  double bu = bench::median_of(kRuns, boost_uncontended);
  std::printf("bench=lock_uncontended ringlet_ns=%.1f boost_fiber_ns=%.1f runs=%d\n", ru, bu, kRuns);
  double rh = bench::median_of(kRuns, ringlet_handoff);
  double bh = bench::median_of(kRuns, boost_handoff);
  std::printf("bench=lock_handoff ringlet_ns=%.1f boost_fiber_ns=%.1f runs=%d\n", rh, bh, kRuns);
  double rq = bench::median_of(kRuns, ringlet_queue);
  double bq = bench::median_of(kRuns, boost_queue);
  std::printf("bench=queue ringlet_items_per_s=%.0f boost_fiber_items_per_s=%.0f capacity=%zu runs=%d\n",
              rq, bq, kCapacity, kRuns);
  double tp = bench::median_of(kRuns, threadpool_roundtrip);
  double as = bench::median_of(kRuns, async_roundtrip);
  std::printf("bench=threadpool_roundtrip ringlet_ns=%.0f std_async_ns=%.0f runs=%d\n", tp, as, kRuns);
}
