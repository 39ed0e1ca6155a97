// bench/spawn_ab.sh's host: loads two builds of the driver (driver.cpp, each linked with its
// own libringlet) into one process (dlmopen: separate namespaces, so two ringlets coexist)
// and, per run, starts one ringlet::run of each on its own thread. The threads take turns
// round by round, so the two libraries' rounds alternate within milliseconds of each other
// and share whatever the machine does meanwhile (the other CPU's load on the shared cache).
// Which library starts, and which thread is created first, alternate between runs; which
// library is loaded first is the last argument's choice (a library loaded second measured a
// few % apart in some sessions).
//   host RUNS ROUNDS BEFORE.so AFTER.so [after-first]
// Prints per run the medians of its rounds and after/before; then the medians over all.
#include <dlfcn.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using Hook = void (*)(int);
using Rounds = void (*)(int, double*, Hook, Hook, int);

std::mutex mu;
std::condition_variable cv;
int turn = 0;

void wait_turn(int me) {
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return turn == me; });
}

void pass_turn(int me) {
  {
    std::lock_guard lock(mu);
    turn = 1 - me;
  }
  cv.notify_all();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: host RUNS ROUNDS BEFORE.so AFTER.so [after-first]\n");
    return 2;
  }
  const int runs = std::atoi(argv[1]), rounds = std::atoi(argv[2]);
  const bool after_first = argc == 6;
  Rounds fn[2];  // [0] before, [1] after
  for (int j = 0; j < 2; ++j) {
    const int k = after_first ? 1 - j : j;
    void* h = dlmopen(LM_ID_NEWLM, argv[3 + k], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      std::fprintf(stderr, "host: %s\n", dlerror());
      return 1;
    }
    fn[k] = reinterpret_cast<Rounds>(dlsym(h, "spawn_ab_rounds"));
    if (!fn[k]) {
      std::fprintf(stderr, "host: %s has no spawn_ab_rounds\n", argv[3 + k]);
      return 1;
    }
  }
  std::vector<double> all[2], run_ratio, pair_ratio;
  for (int r = 0; r < runs; ++r) {
    std::vector<double> out[2] = {std::vector<double>(rounds), std::vector<double>(rounds)};
    turn = r % 2;
    const int first = (r / 2) % 2;
    std::thread a([&] { fn[first](rounds, out[first].data(), wait_turn, pass_turn, first); });
    std::thread b([&] { fn[1 - first](rounds, out[1 - first].data(), wait_turn, pass_turn, 1 - first); });
    a.join();
    b.join();
    for (int i = 0; i < rounds; ++i) {
      all[0].push_back(out[0][i]);
      all[1].push_back(out[1][i]);
      pair_ratio.push_back(out[1][i] / out[0][i]);
    }
    const double mb = median(out[0]), ma = median(out[1]);
    run_ratio.push_back(ma / mb);
    std::printf("run %d: before %.1f after %.1f after/before %.3f\n", r, mb, ma, ma / mb);
  }
  const double mb = median(all[0]), ma = median(all[1]);
  std::printf("rounds=%zu before_ns=%.1f after_ns=%.1f after_over_before=%.3f round_pair_ratio=%.3f run_ratio=%.3f\n",
              all[0].size(), mb, ma, ma / mb, median(pair_ratio), median(run_ratio));
}
