// A 4-ary min-heap of timers whose nodes live on parked fibers' stacks. Each node knows its
// index, so a fiber woken early removes its timer in O(log n); equal deadlines fire in the
// order they were added (libuv's start sequence).
#pragma once

#include <cstdint>
#include <vector>

#include "ringlet/detail/fiber.hpp"

namespace ringlet::detail {

struct TimerNode {
  static constexpr std::uint32_t kNotQueued = UINT32_MAX;
  Clock::time_point when;
  std::uint64_t seq = 0;
  Fiber* fiber = nullptr;
  std::uint64_t token = 0;
  std::uint32_t index = kNotQueued;
  bool queued() const noexcept { return index != kNotQueued; }
};

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.front(); }

  void push(TimerNode* n) {
    n->seq = next_seq_++;
    n->index = static_cast<std::uint32_t>(heap_.size());
    heap_.push_back(n);
    sift_up(n->index);
  }

  void remove(TimerNode* n) noexcept {
    std::uint32_t i = n->index;
    n->index = TimerNode::kNotQueued;
    TimerNode* last = heap_.back();
    heap_.pop_back();
    if (last == n) return;
    place(last, i);
    sift_up(i);
    sift_down(last->index);
  }

  TimerNode* pop() noexcept {
    TimerNode* n = heap_.front();
    remove(n);
    return n;
  }

 private:
  static constexpr std::uint32_t kArity = 4;
  static bool less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
  }
  void place(TimerNode* n, std::uint32_t i) noexcept {
    heap_[i] = n;
    n->index = i;
  }
  void sift_up(std::uint32_t i) noexcept {
    TimerNode* n = heap_[i];
    while (i > 0) {
      std::uint32_t parent = (i - 1) / kArity;
      if (!less(n, heap_[parent])) break;
      place(heap_[parent], i);
      i = parent;
    }
    place(n, i);
  }
  void sift_down(std::uint32_t i) noexcept {
    const auto size = static_cast<std::uint32_t>(heap_.size());
    TimerNode* n = heap_[i];
    for (;;) {
      std::uint32_t first = i * kArity + 1;
      if (first >= size) break;
      std::uint32_t best = first;
      std::uint32_t end = first + kArity < size ? first + kArity : size;
      for (std::uint32_t c = first + 1; c < end; ++c)
        if (less(heap_[c], heap_[best])) best = c;
      if (!less(heap_[best], n)) break;
      place(heap_[best], i);
      i = best;
    }
    place(n, i);
  }

  std::vector<TimerNode*> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace ringlet::detail
