// One-way switch between two fibers: ringlet::yield through the scheduler, against a raw
// Boost.Context jump and a Boost.Fiber yield measured in the same process.
#include <boost/context/detail/fcontext.hpp>
#include <boost/fiber/all.hpp>
#include <cstdlib>
#include <ringlet/ringlet.hpp>

#include "common.hpp"

namespace ctx = boost::context::detail;

namespace {

constexpr long kSwitches = 4'000'000;  // per run, split between the two fibers
constexpr int kRuns = 7;

double ringlet_yield_ns() {
  return ringlet::run([] {
    auto body = [] {
      for (long i = 0; i < kSwitches / 2; ++i) ringlet::yield();
    };
    auto t0 = bench::Clock::now();
    auto a = ringlet::spawn(body);
    auto b = ringlet::spawn(body);
    a.join();
    b.join();
    return bench::seconds(t0, bench::Clock::now()) * 1e9 / kSwitches;
  });
}

void pong(ctx::transfer_t t) {
  for (;;) t = ctx::jump_fcontext(t.fctx, nullptr);
}

double raw_fcontext_ns() {
  constexpr std::size_t kStack = 64 * 1024;
  char* stack = static_cast<char*>(std::malloc(kStack));
  ctx::transfer_t t{ctx::make_fcontext(stack + kStack, kStack, &pong), nullptr};
  auto t0 = bench::Clock::now();
  for (long i = 0; i < kSwitches / 2; ++i) t = ctx::jump_fcontext(t.fctx, nullptr);  // two jumps
  double ns = bench::seconds(t0, bench::Clock::now()) * 1e9 / kSwitches;
  std::free(stack);  // the pong context is abandoned mid-loop; its stack is just memory
  return ns;
}

double boost_fiber_ns() {
  auto body = [] {
    for (long i = 0; i < kSwitches / 2; ++i) boost::this_fiber::yield();
  };
  auto t0 = bench::Clock::now();
  boost::fibers::fiber a(body), b(body);
  a.join();
  b.join();
  return bench::seconds(t0, bench::Clock::now()) * 1e9 / kSwitches;
}

}  // namespace

int main() {
  double raw = bench::median_of(kRuns, raw_fcontext_ns);
  double ours = bench::median_of(kRuns, ringlet_yield_ns);
  double bf = bench::median_of(kRuns, boost_fiber_ns);
  std::printf("bench=switch ringlet_yield_ns=%.1f raw_fcontext_ns=%.1f boost_fiber_yield_ns=%.1f "
              "ratio_vs_raw=%.2f runs=%d switches=%ld\n",
              ours, raw, bf, ours / raw, kRuns, kSwitches);
}
