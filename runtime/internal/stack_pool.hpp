// Fiber stacks: carved from large anonymous mappings (slabs), reused LIFO after a fiber
// ends, and given back to the kernel (madvise) past a cache size when the scheduler idles.
//
// Overflow protection, strongest available first:
//  - GuardMarker: a guard page installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13+).
//    It lives in the page tables and does not split the mapping, so a million guarded stacks
//    cost no VMAs; batched per slab with process_madvise.
//  - GuardPage: a PROT_NONE page (mprotect). Each one splits the mapping, so they are used
//    while the process stays under a VMA budget derived from vm.max_map_count.
//  - Checked: past that budget, no guard; the stack pointer is checked at every switch and
//    a canary at the stack's lowest word is checked at every switch and at exit.
// A hit guard is reported with the fiber's name by the SIGSEGV handler (signals.cpp).
// RINGLET_STACK_GUARD=marker|page|check forces a mode (for tests and old kernels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "internal/counters.hpp"
#include "internal/fiber_state.hpp"

namespace ringlet::detail {

class StackPool {
 public:
  static constexpr std::size_t kDefaultStackSize = 64 * 1024;
  static constexpr std::uint64_t kCanary = 0x52494e474c455421ull;  // "RINGLET!"

  explicit StackPool(std::size_t default_size);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A stack of at least `size` bytes (0 = the default). Throws std::system_error.
  StackSpan acquire(std::size_t size);
  void release(const StackSpan& s) noexcept;
  // Give cached stacks beyond the cache size back to the kernel.
  void trim() noexcept;

  std::size_t default_size() const noexcept { return default_size_; }
  // The protection new stacks get now (GuardPage turns into Checked past the VMA budget).
  StackProtection protection() const noexcept;

  struct Stats {
    std::size_t in_use = 0, cached = 0, trimmed = 0, mapped_bytes = 0;
    std::size_t guard_markers = 0, guard_pages = 0, checked = 0;
  };
  Stats stats() const noexcept;  // the owning thread only (in_use, cached, trimmed: derived)
  // Any thread (ringlet::stats): usable bytes of the stacks handed out, and of those kept
  // for reuse that still hold memory (not trimmed).
  std::uint64_t bytes_in_use() const noexcept { return bytes_in_use_.get(); }
  // (Derived, so that release() pays nothing for it: carved, less in use, less trimmed; the
  // three are read one after the other, so a reader racing the owner may see a moment's
  // mismatch, clamped at 0.)
  std::uint64_t bytes_cached() const noexcept {
    const std::uint64_t trimmed = bytes_trimmed_.get(), in_use = bytes_in_use_.get();
    const std::uint64_t carved = bytes_carved_.get();
    return carved > in_use + trimmed ? carved - in_use - trimmed : 0;
  }

  static const char* protection_name(StackProtection p) noexcept;

 private:
  struct FreeList {
    std::size_t size = 0;                 // usable bytes of the stacks in it
    std::vector<StackSpan> stacks;        // LIFO; [0, trimmed) are trimmed already
    std::size_t trimmed = 0;
    char* slab_next = nullptr;            // carving position in the current slab
    std::size_t slab_left = 0;            // stacks left to carve there
    std::size_t carved = 0;               // stacks ever carved (in use: carved less cached)
  };
  FreeList& list_for(std::size_t size);
  void map_slab(FreeList& fl);

  std::size_t page_;
  std::size_t default_size_;
  std::size_t cache_limit_;               // stacks kept warm per size
  StackProtection mode_;
  std::vector<FreeList> lists_;           // few sizes in practice
  std::vector<std::pair<void*, std::size_t>> slabs_;
  Stats stats_;  // its in_use, cached and trimmed are not kept (stats() derives them)
  // Usable bytes: of stacks handed out now, carved from slabs ever, in the cache and trimmed.
  OwnedCounter bytes_in_use_, bytes_carved_, bytes_trimmed_;
};

}  // namespace ringlet::detail
