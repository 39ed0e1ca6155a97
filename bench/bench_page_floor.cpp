// The kernel's share of creating a fiber on a fresh stack, without any runtime: map 16 MiB
// slabs, install one guard page per 64 KiB stack (as StackPool does), and touch each stack's
// top page once. This is the floor under bench_million's fresh-stack creation time.
//
//   bench_page_floor [STACKS]
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "common.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  const std::size_t page = 4096, slot = page + 64 * 1024, per = (16u << 20) / slot;
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  std::vector<iovec> guards(per);
  std::vector<std::pair<char*, std::size_t>> maps;
  bool guarded = true;
  auto t0 = bench::Clock::now();
  for (long made = 0; made < n;) {
    auto* p = static_cast<char*>(mmap(nullptr, per * slot, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0));
    if (p == MAP_FAILED) return 1;
    maps.emplace_back(p, per * slot);
    for (std::size_t i = 0; i < per; ++i) guards[i] = iovec{p + i * slot, page};
    if (syscall(SYS_process_madvise, pidfd, guards.data(), per, MADV_GUARD_INSTALL, 0) < 0) guarded = false;
    for (std::size_t i = 0; i < per && made < n; ++i, ++made) p[(i + 1) * slot - 64] = 1;
  }
  const double s = bench::seconds(t0, bench::Clock::now());
  std::printf("bench=page_floor stacks=%ld seconds=%.2f us_per_stack=%.2f guards=%s\n", n, s,
              s * 1e6 / static_cast<double>(n), guarded ? "yes" : "no");
  for (auto [p, len] : maps) munmap(p, len);
}
