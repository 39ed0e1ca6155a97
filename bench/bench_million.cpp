// One million fibers parked in sleep, then all woken at once: creation time, RSS per parked
// fiber, wake-all time. A second wave on the recycled stacks shows the runtime's own cost
// apart from the kernel's first-touch page faults on fresh stacks.
//
//   bench_million [FIBERS]
#include <cstdlib>
#include <ringlet/ringlet.hpp>
#include <vector>

#include "common.hpp"

namespace {

struct Wave {
  double create_s = 0, wake_s = -1, rss_kib_per_fiber = 0;
  long woken = 0;
};

// Spawn n fibers that all sleep until one shared moment, far enough ahead that creating
// them ends first (checked: a late wave reports wake_s=-1), then join them all.
Wave wave(int n) {
  Wave w;
  std::vector<ringlet::Greenlet<void>> gs;
  gs.reserve(static_cast<std::size_t>(n));
  const long rss0 = bench::rss_kib();
  const auto t0 = bench::Clock::now();
  const auto wake_at = t0 + std::chrono::microseconds(3'000'000 + 4L * n);
  for (int i = 0; i < n; ++i)
    gs.push_back(ringlet::spawn([&w, wake_at] {
      ringlet::sleep_until(wake_at);
      ++w.woken;
    }));
  ringlet::yield();  // every fiber runs once and parks; then we are back
  const auto created = bench::Clock::now();
  w.create_s = bench::seconds(t0, created);
  w.rss_kib_per_fiber = static_cast<double>(bench::rss_kib() - rss0) / n;
  ringlet::joinall(gs);
  if (created < wake_at) w.wake_s = bench::seconds(wake_at, bench::Clock::now());
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1'000'000;
  if (n < 1) {
    std::fprintf(stderr, "usage: bench_million [FIBERS]\n");
    return 2;
  }
  ringlet::run([n] {
    Wave fresh = wave(n);
    Wave reused = wave(n);
    std::printf("bench=million fibers=%d create_s=%.2f rss_kib_per_fiber=%.2f wake_all_s=%.2f "
                "recycled_create_s=%.2f recycled_wake_all_s=%.2f woken=%ld\n",
                n, fresh.create_s, fresh.rss_kib_per_fiber, fresh.wake_s, reused.create_s,
                reused.wake_s, fresh.woken + reused.woken);
  });
}
