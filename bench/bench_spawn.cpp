// spawn + run + join of 100 000 short fibers, ns per fiber: ringlet against Boost.Fiber
// (pooled stacks) in the same process. Medians of several rounds; stacks are reused after
// the first round in both.
#include <boost/fiber/all.hpp>
#include <ringlet/ringlet.hpp>
#include <vector>

#include "common.hpp"

namespace {

constexpr int kFibers = 100'000;
constexpr int kRuns = 7;

double ringlet_ns() {
  return ringlet::run([] {
    std::vector<double> rounds;
    std::vector<ringlet::Greenlet<int>> gs;
    gs.reserve(kFibers);
    for (int r = 0; r < kRuns + 1; ++r) {
      gs.clear();
      auto t0 = bench::Clock::now();
      for (int i = 0; i < kFibers; ++i) gs.push_back(ringlet::spawn([i] { return i; }));
      long sum = 0;
      for (auto& g : gs) sum += g.get();
      double ns = bench::seconds(t0, bench::Clock::now()) * 1e9 / kFibers;
      if (sum != static_cast<long>(kFibers) * (kFibers - 1) / 2) std::abort();
      if (r > 0) rounds.push_back(ns);  // round 0 faults the stacks in
    }
    return bench::median(rounds);
  });
}

double boost_fiber_ns() {
  boost::fibers::pooled_fixedsize_stack pool(64 * 1024, kFibers);
  std::vector<double> rounds;
  std::vector<boost::fibers::fiber> fs;
  fs.reserve(kFibers);
  for (int r = 0; r < kRuns + 1; ++r) {
    fs.clear();
    long sum = 0;
    auto t0 = bench::Clock::now();
    for (int i = 0; i < kFibers; ++i)
      fs.emplace_back(std::allocator_arg, pool, [i, &sum] { sum += i; });
    for (auto& f : fs) f.join();
    double ns = bench::seconds(t0, bench::Clock::now()) * 1e9 / kFibers;
    if (sum != static_cast<long>(kFibers) * (kFibers - 1) / 2) std::abort();
    if (r > 0) rounds.push_back(ns);
  }
  return bench::median(rounds);
}

}  // namespace

int main() {
  double ours = ringlet_ns();
  double bf = boost_fiber_ns();
  std::printf("bench=spawn fibers=%d ringlet_ns_per_fiber=%.0f boost_fiber_ns_per_fiber=%.0f "
              "ratio_vs_boost_fiber=%.2f runs=%d\n",
              kFibers, ours, bf, ours / bf, kRuns);
}
