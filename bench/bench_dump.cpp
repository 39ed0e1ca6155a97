// The fiber dump of N parked fibers (default 100 000, all parked in the same Queue::get, so
// one entry): how long ringlet::dump_text() takes and how much memory it needs at its peak.
// The first dump loads libdw and reads the debug information; the figure is the median of
// the later ones. Peak growth: VmHWM after the dumps less VmRSS before the first (the fibers
// and their stacks are all touched before).
#include <ringlet/dump.hpp>
#include <ringlet/ringlet.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == field) {
      long v = 0;
      in >> v;
      return v;
    }
    in.ignore(4096, '\n');
  }
  return 0;
}

[[gnu::noinline]] void parked_handler(ringlet::Queue<int>& q) {
  [[maybe_unused]] static volatile int sink;
  sink = q.get().value_or(0);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 100'000;
  constexpr int kRuns = 5;
  ringlet::run([n] {
    ringlet::Queue<int> q;
    std::vector<ringlet::Greenlet<void>> hs;
    hs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) hs.push_back(ringlet::spawn([&q] { parked_handler(q); }));
    ringlet::sleep(std::chrono::milliseconds(50));  // every one parked
    const long rss_before = status_kib("VmRSS:");
    auto t0 = bench::Clock::now();
    std::string text = ringlet::dump_text();
    const double first_s = bench::seconds(t0, bench::Clock::now());
    std::vector<double> later;
    std::size_t bytes = text.size();
    for (int r = 0; r < kRuns; ++r) {
      text.clear();
      text.shrink_to_fit();
      t0 = bench::Clock::now();
      text = ringlet::dump_text();
      later.push_back(bench::seconds(t0, bench::Clock::now()));
    }
    const long hwm = status_kib("VmHWM:");
    if (text.find("\xC3\x97" + std::to_string(n) + " fibers") == std::string::npos) {
      std::fprintf(stderr, "bench_dump: the %d fibers are not one entry:\n%s", n, text.substr(0, 2000).c_str());
      std::abort();
    }
    std::printf("bench=dump fibers=%d first_ms=%.1f median_ms=%.1f ns_per_fiber=%.0f peak_growth_kib=%ld "
                "text_bytes=%zu runs=%d\n",
                n, first_s * 1e3, bench::median(later) * 1e3, bench::median(later) * 1e9 / n, hwm - rss_before,
                bytes, kRuns);
    q.close();
    ringlet::joinall(hs);
  });
}
