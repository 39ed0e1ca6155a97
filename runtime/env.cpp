#include "internal/env.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "internal/stack_pool.hpp"

namespace ringlet::detail {

std::size_t env_stack_size() {
  const char* v = std::getenv("RINGLET_STACK_SIZE");
  if (!v || !*v) return StackPool::kDefaultStackSize;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  std::size_t mult = 1;
  if (end && (*end == 'k' || *end == 'K')) mult = 1024, ++end;
  else if (end && (*end == 'm' || *end == 'M')) mult = 1024 * 1024, ++end;
  if (end == v || *end != '\0' || n == 0 || n * mult < 16 * 1024 || n * mult > (1ull << 30))
    throw std::invalid_argument(std::string("ringlet: RINGLET_STACK_SIZE='") + v +
                                "' is not a size between 16K and 1024M (e.g. 256K)");
  return static_cast<std::size_t>(n * mult);
}

Backend env_backend() {
  const char* v = std::getenv("RINGLET_BACKEND");
  if (!v || !*v || std::strcmp(v, "auto") == 0) return Backend::Auto;
  if (std::strcmp(v, "epoll") == 0) return Backend::Epoll;
  if (std::strcmp(v, "io_uring") == 0 || std::strcmp(v, "uring") == 0) return Backend::IoUring;
  throw std::invalid_argument(std::string("ringlet: RINGLET_BACKEND='") + v +
                              "' is not one of auto, io_uring, epoll");
}

long env_spin_us() {
  const char* v = std::getenv("RINGLET_SPIN_US");
  if (!v || !*v) return 20;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 0 || n > 1000)
    throw std::invalid_argument(std::string("ringlet: RINGLET_SPIN_US='") + v +
                                "' is not a number of microseconds from 0 to 1000");
  return n;
}

bool env_verbose() noexcept {
  const char* v = std::getenv("RINGLET_VERBOSE");
  return v && *v && std::strcmp(v, "0") != 0;
}

namespace {
std::atomic<bool> g_notice_said{false};
}

void say_once_engine(const std::string& what) {
  static std::once_flag once;
  std::call_once(once, [&] {
    std::fprintf(stderr, "ringlet: engine %s\n", what.c_str());
    g_notice_said.store(true);
  });
}

bool engine_notice_said() noexcept { return g_notice_said.load(); }

}  // namespace ringlet::detail
