// Switches that land on cold fibers: N fibers take turns, so every switch resumes the fiber
// that ran longest ago, whose stack top and state have left the nearest caches once N is
// large (the echo server at 1 000 connections). Two patterns, for N = 2 .. 10 000:
//  - yield: every fiber yield()s in a loop; the run queue is a ring of N. ns per switch.
//  - wake: each of N fibers waits on a Semaphore of its own; a driver fiber releases all N in
//    a shuffled order (completions come in no order; fibers spawned one after another have
//    stacks and states at a fixed stride, which a hardware prefetcher would follow), then
//    waits until every one has run and waits again (a batch of completions that the loop
//    reaps and whose fibers then run one after the other). ns per woken fiber (its wake,
//    the switch to it, its park).
//   bench_cold [N...]   (default: 2 16 128 1000 10000)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include <ringlet/ringlet.hpp>
#include <ringlet/sync.hpp>

#include "common.hpp"

namespace {

constexpr long kSwitches = 2'000'000;  // per run
constexpr int kRuns = 5;

double yield_ns(long n) {
  const long per = std::max(1L, kSwitches / n);
  return ringlet::run([&] {
    std::vector<ringlet::Greenlet<void>> gs;
    gs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) gs.push_back(ringlet::spawn([per] {
      for (long k = 0; k < per; ++k) ringlet::yield();
    }));
    ringlet::yield();  // every fiber has started and yielded once
    auto t0 = bench::Clock::now();
    for (auto& g : gs) g.join();
    return bench::seconds(t0, bench::Clock::now()) * 1e9 / static_cast<double>(per * n);
  });
}

double wake_ns(long n) {
  const long rounds = std::max(1L, kSwitches / n);
  return ringlet::run([&] {
    auto sems = std::make_unique<ringlet::Semaphore[]>(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) sems[i].acquire();  // all at 0
    ringlet::Semaphore done(0);
    long left = 0;
    std::vector<ringlet::Greenlet<void>> gs;
    gs.reserve(static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i) gs.push_back(ringlet::spawn([&, i] {
      for (long k = 0; k < rounds; ++k) {
        sems[i].acquire();
        if (--left == 0) done.release();
      }
    }));
    std::vector<long> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0L);
    std::shuffle(order.begin(), order.end(), std::mt19937(42));
    ringlet::yield();  // every fiber waits on its semaphore
    auto t0 = bench::Clock::now();
    for (long k = 0; k < rounds; ++k) {
      left = n;
      for (long i : order) sems[i].release();
      done.acquire();
    }
    const double ns = bench::seconds(t0, bench::Clock::now()) * 1e9 / static_cast<double>(rounds * n);
    for (auto& g : gs) g.join();
    return ns;
  });
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> ns;
  for (int i = 1; i < argc; ++i) ns.push_back(std::atol(argv[i]));
  if (ns.empty()) ns = {2, 16, 128, 1000, 10000};
  for (long n : ns) {
    const double y = bench::median_of(kRuns, [n] { return yield_ns(n); });
    const double w = bench::median_of(kRuns, [n] { return wake_ns(n); });
    std::printf("bench=cold fibers=%ld yield_ns=%.1f wake_ns=%.1f runs=%d\n", n, y, w, kRuns);
    std::fflush(stdout);
  }
}
