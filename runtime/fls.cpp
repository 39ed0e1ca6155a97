// Fiber-local storage: a lazily created table of slots per fiber (and one per plain thread).
#include <atomic>
#include <utility>
#include <vector>

#include "internal/scheduler.hpp"
#include "ringlet/fiber_local.hpp"

namespace ringlet::detail {

struct FlsTable {
  std::vector<std::pair<void*, void (*)(void*)>> slots;

  // Destructors may touch other fiber-locals (even create them): repeat until empty.
  void clear() noexcept {
    while (!slots.empty()) {
      auto taken = std::move(slots);
      slots.clear();
      for (auto& [p, destroy] : taken)
        if (p) destroy(p);
    }
  }
};

namespace {
struct ThreadFls {
  FlsTable* table = nullptr;
  ~ThreadFls() {
    if (table) {
      table->clear();
      delete table;
    }
  }
};
thread_local ThreadFls tls_fls;
}  // namespace

std::size_t fls_new_key() noexcept {
  static std::atomic<std::size_t> next{0};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void* fls_get(std::size_t key, void* (*make)(), void (*destroy)(void*)) {
  Fiber* f = current_fiber();
  FlsTable*& t = f ? st(f).fls : tls_fls.table;
  if (!t) t = new FlsTable;
  if (key >= t->slots.size()) t->slots.resize(key + 1, {nullptr, nullptr});
  auto& slot = t->slots[key];
  if (!slot.first) {
    void* p = make();
    t->slots[key] = {p, destroy};  // make() may have grown the table: index again
    return p;
  }
  return slot.first;
}

void* fls_find(std::size_t key) noexcept {
  Fiber* f = current_fiber();
  FlsTable* t = f ? st(f).fls : tls_fls.table;
  return t && key < t->slots.size() ? t->slots[key].first : nullptr;
}

void destroy_fls(Fiber* f) noexcept {
  if (!st(f).fls) return;
  st(f).fls->clear();
  delete st(f).fls;
  st(f).fls = nullptr;
}

}  // namespace ringlet::detail
