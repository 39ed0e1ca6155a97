// Stacks: overflow is reported with the fiber's name in every protection mode; guard pages
// scale to a million fibers; stacks are reused and trimmed.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "internal/stack_pool.hpp"
#include "helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::rss_kib;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

__attribute__((noinline)) int recurse(int depth) {
  volatile unsigned char pad[512];
  pad[0] = static_cast<unsigned char>(depth);
  if (depth == 0) return pad[0];
  return recurse(depth - 1) + pad[0];
}

// Recurse until the frames reach below `limit`, switch there, then return.
__attribute__((noinline)) int dig_below(const char* limit) {
  volatile unsigned char pad[256];
  pad[0] = 1;
  if (static_cast<const char*>(__builtin_frame_address(0)) < limit) {
    ringlet::yield();  // a switch with the stack pointer past the end
    return pad[0];
  }
  return dig_below(limit) + pad[0];
}

std::size_t map_count() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

}  // namespace

TEST_CASE("stack overflow is reported with the fiber's name, then aborts", "[stack]") {
  for (const char* mode : {"marker", "page"}) {
    DYNAMIC_SECTION("guard " << mode) {
      auto r = ringlet::test::in_child([mode] {
        setenv("RINGLET_STACK_GUARD", mode, 1);
        try {
          ringlet::run([] {
            ringlet::spawn(ringlet::SpawnOptions{.name = "deep"}, [] { return recurse(1 << 20); }).join();
          });
        } catch (const std::exception& e) {
          std::fprintf(stderr, "setup failed: %s\n", e.what());
          _exit(3);
        }
      });
      INFO(r.err);
      if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3 &&
          r.err.find("MADV_GUARD_INSTALL") != std::string::npos)
        RINGLET_SKIP("kernel has no MADV_GUARD_INSTALL (Linux 6.13+)");
      CHECK(WIFSIGNALED(r.status));
      CHECK(WTERMSIG(r.status) == SIGABRT);
      CHECK(r.err.find("ringlet: fiber 'deep' (#2) overflowed its stack of 64 KiB") != std::string::npos);
      CHECK(r.err.find("guard page") != std::string::npos);
    }
  }
}

TEST_CASE("checked stacks (no guard page) report an overflow at the next switch", "[stack]") {
  auto r = ringlet::test::in_child([] {
    setenv("RINGLET_STACK_GUARD", "check", 1);
    ringlet::run([] {
      ringlet::spawn(ringlet::SpawnOptions{.name = "sloppy"}, [] {
        // 1 KiB past the end, into the unused slot page below: no fault, nothing to catch it
        // but the check at the switch.
        dig_below(st(ringlet::detail::current_fiber()).stack.lo - 1024);
      }).join();
    });
  });
  INFO(r.err);
  CHECK(WIFSIGNALED(r.status));
  CHECK(WTERMSIG(r.status) == SIGABRT);
  CHECK(r.err.find("ringlet: fiber 'sloppy' (#2) overflowed its stack") != std::string::npos);
  CHECK(r.err.find("found at a switch") != std::string::npos);
}

TEST_CASE("a per-spawn stack size is honoured", "[stack]") {
  in_scheduler([] {
    auto g = ringlet::spawn(ringlet::SpawnOptions{.stack_size = 1024 * 1024}, [] { return recurse(1000); });
    CHECK(g.get() >= 0);  // ~500 KiB deep: would overflow the default 64 KiB
    auto* f = g.native();
    CHECK(st(f).stack.size == 0);  // released after it finished
  });
}

TEST_CASE("finished fibers' stacks are reused and trimmed past the cache", "[stack]") {
  in_scheduler([] {
    auto& pool = ringlet::detail::Scheduler::current()->stacks();
    for (int i = 0; i < 2000; ++i) ringlet::spawn([] { ringlet::yield(); }).join();
    const auto mapped = pool.stats().mapped_bytes;
    for (int i = 0; i < 2000; ++i) ringlet::spawn([] {}).join();
    CHECK(pool.stats().mapped_bytes == mapped);  // sequential fibers reuse one stack

    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 5000; ++i) gs.push_back(ringlet::spawn([] { ringlet::sleep(1ms); }));
    ringlet::joinall(gs);
    ringlet::sleep(2ms);  // idle: the loop trims
    auto s = pool.stats();
    CHECK(s.cached >= 5000);
    CHECK(s.trimmed == s.cached - 1024);
  });
}

TEST_CASE("mprotect guard pages stay under the VMA budget, then stacks are checked", "[stack]") {
  setenv("RINGLET_STACK_GUARD", "page", 1);
  std::size_t guarded = 0, checked = 0, maps_during = 0;
  const std::size_t maps_before = map_count();
  in_scheduler([&] {
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 40000; ++i) gs.push_back(ringlet::spawn([] { ringlet::sleep(50ms); }));
    ringlet::yield();
    auto s = ringlet::detail::Scheduler::current()->stacks().stats();
    guarded = s.guard_pages;
    checked = s.checked;
    maps_during = map_count();
    ringlet::joinall(gs);
  });
  unsetenv("RINGLET_STACK_GUARD");
  long max_maps = 65530;
  std::ifstream("/proc/sys/vm/max_map_count") >> max_maps;
  const auto budget = static_cast<std::size_t>((max_maps - 8192) / 2);
  INFO("guarded " << guarded << " checked " << checked << " maps " << maps_before << " -> " << maps_during);
  CHECK(guarded + checked == 40001);  // and the main fiber's
  CHECK(guarded <= budget);
  if (budget < 40001) CHECK(checked == 40001 - budget);
  CHECK(maps_during < static_cast<std::size_t>(max_maps));
}

TEST_CASE("one million concurrent fibers on a stock vm.max_map_count", "[stack][million]") {
  if (kAsan) RINGLET_SKIP("a million fibers under AddressSanitizer exceed the test's time budget");
  constexpr int kFibers = 1'000'000;
  std::size_t maps_during = 0;
  std::size_t rss_growth_kib = 0;
  ringlet::detail::StackProtection mode{};
  long woke = 0;
  const std::size_t rss0 = rss_kib();
  in_scheduler([&] {
    auto wake_at = ringlet::Clock::now() + 3s;
    std::vector<ringlet::Greenlet<void>> gs;
    gs.reserve(kFibers);
    for (int i = 0; i < kFibers; ++i)
      gs.push_back(ringlet::spawn([&woke, wake_at] {
        ringlet::sleep_until(wake_at);
        ++woke;
      }));
    ringlet::sleep(1ms);  // all of them park
    maps_during = map_count();
    rss_growth_kib = rss_kib() - rss0;
    mode = ringlet::detail::Scheduler::current()->stacks().protection();
    ringlet::joinall(gs);
  });
  INFO("maps " << maps_during << ", RSS growth " << rss_growth_kib << " KiB, protection "
               << ringlet::detail::StackPool::protection_name(mode));
  CHECK(woke == kFibers);
  CHECK(maps_during < 65530);
  CHECK(rss_growth_kib / 1024 < 16 * 1024);  // well under 16 KiB per fiber (goal: 4.5 KiB)
}
