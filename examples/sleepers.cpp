// The seed program: tasks that each "do I/O" for a while (here: sleep). Run one after another
// they take the sum of their times; spawned as fibers they overlap and take about the longest.
//
//   sleepers [--tasks N] [--seconds S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <ringlet/ringlet.hpp>

namespace {

void usage(FILE* to) {
  std::fprintf(to,
               "usage: sleepers [--tasks N] [--seconds S]\n"
               "  Runs N tasks that each wait S seconds (default 10 and 0.5): first one after\n"
               "  another, then as ringlet fibers, and prints how long each way took.\n");
}

bool parse(int argc, char** argv, int& tasks, double& seconds) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      std::exit(0);
    }
    if ((a == "--tasks" || a == "--seconds") && i + 1 < argc) {
      char* end = nullptr;
      const char* v = argv[++i];
      if (a == "--tasks") {
        long n = std::strtol(v, &end, 10);
        if (*end || n < 1 || n > 1'000'000) {
          std::fprintf(stderr, "sleepers: --tasks wants a whole number from 1 to 1000000, not '%s'\n", v);
          return false;
        }
        tasks = static_cast<int>(n);
      } else {
        double s = std::strtod(v, &end);
        if (*end || !(s >= 0) || s > 60) {
          std::fprintf(stderr, "sleepers: --seconds wants a number from 0 to 60, not '%s'\n", v);
          return false;
        }
        seconds = s;
      }
      continue;
    }
    std::fprintf(stderr, "sleepers: unknown or incomplete argument '%s'\n", a.c_str());
    usage(stderr);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int tasks = 10;
  double seconds = 0.5;
  if (!parse(argc, argv, tasks, seconds)) return 2;
  const auto io = std::chrono::duration_cast<ringlet::Clock::duration>(std::chrono::duration<double>(seconds));

  auto task = [io](int id) {
    ringlet::sleep(io);  // stands for a blocking read, a request, a query...
    return id;
  };
  auto took = [](ringlet::Clock::time_point t0) {
    return std::chrono::duration<double>(ringlet::Clock::now() - t0).count();
  };

  return ringlet::run([&] {
    std::printf("%d tasks, each waiting %.2f s for \"I/O\"\n", tasks, seconds);
    auto t0 = ringlet::Clock::now();
    for (int i = 0; i < tasks; ++i) task(i);
    const double sequential = took(t0);
    std::printf("  one after another: %6.2f s\n", sequential);
    std::fflush(stdout);

    t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<int>> gs;
    for (int i = 0; i < tasks; ++i) gs.push_back(ringlet::spawn(task, i));
    long sum = 0;
    for (auto& g : gs) sum += g.get();
    const double fibers = took(t0);
    std::printf("  as fibers:         %6.2f s  (%.1fx faster, on %s, one OS thread)\n", fibers,
                fibers > 0 ? sequential / fibers : 0.0, ringlet::engine());
    return sum == static_cast<long>(tasks) * (tasks - 1) / 2 ? 0 : 1;
  });
}
