// bench/spawn_ab.sh's driver: bench_spawn's ringlet part (spawn + run + join of 100 000 short
// fibers, ns per fiber) as a shared object, built once against each of the two libraries
// compared. Before each round it waits for its turn and after it hands the turn over, so that
// the host (host.cpp) can run the two libraries' rounds alternately on one CPU.
#include <ringlet/ringlet.hpp>

#include <chrono>
#include <cstdlib>
#include <vector>

namespace {
constexpr int kFibers = 100'000;
}

using Hook = void (*)(int me);

// One ringlet::run: a round that faults the stacks in, then `rounds` measured rounds.
extern "C" void spawn_ab_rounds(int rounds, double* out, Hook wait_turn, Hook pass_turn, int me) {
  ringlet::run([=] {
    std::vector<ringlet::Greenlet<int>> gs;
    gs.reserve(kFibers);
    for (int r = 0; r < rounds + 1; ++r) {
      gs.clear();
      wait_turn(me);
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < kFibers; ++i) gs.push_back(ringlet::spawn([i] { return i; }));
      long sum = 0;
      for (auto& g : gs) sum += g.get();
      const double ns = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e9 / kFibers;
      pass_turn(me);
      if (sum != static_cast<long>(kFibers) * (kFibers - 1) / 2) std::abort();
      if (r > 0) out[r - 1] = ns;
    }
  });
}
