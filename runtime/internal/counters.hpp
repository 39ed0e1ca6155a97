// A counter written by one thread only (its scheduler's) and read by any: a relaxed load and a
// relaxed store, never a locked read-modify-write, so the hot paths pay a plain add.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringlet::detail {

class OwnedCounter {
 public:
  // The owning thread only.
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  // Any thread.
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace ringlet::detail
