#include "internal/stack_pool.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
// A finished fiber never returns from its first frames, so their redzones stay poisoned in
// ASan's shadow; the next fiber on the same stack must start from a clean slate.
#define RINGLET_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define RINGLET_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13
#endif

namespace ringlet::detail {

namespace {

constexpr std::size_t kSlabBytes = 16 * 1024 * 1024;
constexpr std::size_t kDefaultCache = 1024;  // warm free stacks kept per size
constexpr int kIovBatch = 512;

// Process-wide facts (the VMA limit is per process, so the guard-page budget is too).
struct ProcessFacts {
  bool guard_markers = false;
  int self_pidfd = -1;  // for process_madvise; -1 if unavailable
  long guard_page_budget = 0;
  std::atomic<long> guard_pages_used{0};
};

ProcessFacts& facts() {
  static ProcessFacts f;
  static std::once_flag once;
  std::call_once(once, [] {
    const long page = sysconf(_SC_PAGESIZE);
    void* p = mmap(nullptr, static_cast<std::size_t>(page) * 2, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      f.guard_markers = madvise(p, static_cast<std::size_t>(page), MADV_GUARD_INSTALL) == 0;
      munmap(p, static_cast<std::size_t>(page) * 2);
    }
    f.self_pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    long max_maps = 65530;
    std::ifstream in("/proc/sys/vm/max_map_count");
    in >> max_maps;
    // Each mprotect'd guard splits its slab: two VMAs per guarded stack. Leave room for
    // everything else the process maps.
    f.guard_page_budget = std::max(0L, (max_maps - 8192) / 2);
  });
  return f;
}

// Apply `advice` to many page ranges: one process_madvise per batch where the kernel takes
// it, else one madvise per range.
void advise_many(const std::vector<iovec>& ranges, int advice) {
  ProcessFacts& pf = facts();
  std::size_t i = 0;
  while (pf.self_pidfd >= 0 && i < ranges.size()) {
    const std::size_t n = std::min<std::size_t>(kIovBatch, ranges.size() - i);
    long r = syscall(SYS_process_madvise, pf.self_pidfd, ranges.data() + i, n, advice, 0);
    if (r < 0) break;  // older kernel: not for this advice; finish one by one
    i += n;
  }
  for (; i < ranges.size(); ++i) madvise(ranges[i].iov_base, ranges[i].iov_len, advice);
}

StackProtection env_protection(StackProtection dflt) {
  const char* v = std::getenv("RINGLET_STACK_GUARD");
  if (!v || !*v) return dflt;
  if (std::strcmp(v, "marker") == 0) {
    if (!facts().guard_markers)
      throw std::runtime_error("ringlet: RINGLET_STACK_GUARD=marker, but this kernel has no "
                               "MADV_GUARD_INSTALL (Linux 6.13+)");
    return StackProtection::GuardMarker;
  }
  if (std::strcmp(v, "page") == 0) return StackProtection::GuardPage;
  if (std::strcmp(v, "check") == 0) return StackProtection::Checked;
  throw std::invalid_argument(std::string("ringlet: RINGLET_STACK_GUARD='") + v +
                              "' is not one of marker, page, check");
}

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace

StackPool::StackPool(std::size_t default_size)
    : page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))),
      default_size_(round_up(default_size ? default_size : kDefaultStackSize, page_)),
      cache_limit_(kDefaultCache),
      mode_(env_protection(facts().guard_markers ? StackProtection::GuardMarker
                                                 : StackProtection::GuardPage)) {
  if (const char* v = std::getenv("RINGLET_STACK_CACHE"); v && *v) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v, &end, 10);
    if (*end != '\0' || v[0] == '-' || n > (1ull << 24))
      throw std::invalid_argument(std::string("ringlet: RINGLET_STACK_CACHE='") + v +
                                  "' is not a number of stacks from 0 to 16777216");
    cache_limit_ = static_cast<std::size_t>(n);
  }
}

StackPool::~StackPool() {
  ProcessFacts& pf = facts();
  pf.guard_pages_used.fetch_sub(static_cast<long>(stats_.guard_pages));
  for (auto& [p, n] : slabs_) {
    RINGLET_UNPOISON(p, n);
    munmap(p, n);
  }
}

const char* StackPool::protection_name(StackProtection p) noexcept {
  switch (p) {
    case StackProtection::GuardMarker: return "guard page (MADV_GUARD_INSTALL)";
    case StackProtection::GuardPage: return "guard page (mprotect)";
    case StackProtection::Checked: return "checked at switches (no guard page)";
  }
  return "?";
}

StackProtection StackPool::protection() const noexcept {
  if (mode_ == StackProtection::GuardPage) {
    ProcessFacts& pf = facts();
    if (pf.guard_pages_used.load(std::memory_order_relaxed) >= pf.guard_page_budget)
      return StackProtection::Checked;
  }
  return mode_;
}

StackPool::Stats StackPool::stats() const noexcept {
  Stats s = stats_;
  s.in_use = 0;
  s.cached = 0;
  s.trimmed = 0;
  for (const auto& fl : lists_) {
    s.in_use += fl.carved - fl.stacks.size();  // derived: acquire and release keep no count
    s.cached += fl.stacks.size();
    s.trimmed += fl.trimmed;
  }
  return s;
}

StackPool::FreeList& StackPool::list_for(std::size_t size) {
  for (auto& fl : lists_)
    if (fl.size == size) return fl;
  lists_.emplace_back();
  lists_.back().size = size;
  return lists_.back();
}

void StackPool::map_slab(FreeList& fl) {
  const std::size_t slot = page_ + fl.size;  // guard page, then the stack
  const std::size_t count = std::max<std::size_t>(1, kSlabBytes / slot);
  const std::size_t bytes = count * slot;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED)
    throw std::system_error(errno, std::generic_category(),
                            "ringlet: cannot map " + std::to_string(bytes >> 20) +
                                " MiB for fiber stacks");
  slabs_.emplace_back(p, bytes);
  stats_.mapped_bytes += bytes;
  fl.slab_next = static_cast<char*>(p);
  fl.slab_left = count;
  if (mode_ == StackProtection::GuardMarker) {
    std::vector<iovec> guards(count);
    for (std::size_t i = 0; i < count; ++i)
      guards[i] = iovec{static_cast<char*>(p) + i * slot, page_};
    advise_many(guards, MADV_GUARD_INSTALL);
  }
}

StackSpan StackPool::acquire(std::size_t size) {
  size = size ? round_up(std::max<std::size_t>(size, 16 * 1024), page_) : default_size_;
  FreeList& fl = list_for(size);
  StackSpan s;
  if (!fl.stacks.empty()) {
    s = fl.stacks.back();
    fl.stacks.pop_back();
    if (fl.trimmed > fl.stacks.size()) {  // the top was trimmed
      fl.trimmed = fl.stacks.size();
      bytes_trimmed_.sub(s.size);
    }
    RINGLET_UNPOISON(s.lo, s.size);
  } else {
    if (fl.slab_left == 0) map_slab(fl);
    char* slot = fl.slab_next;
    fl.slab_next += page_ + size;
    --fl.slab_left;
    ++fl.carved;
    s.lo = slot + page_;
    s.size = size;
    bytes_carved_.add(size);
    s.protection = mode_;
    if (mode_ == StackProtection::GuardPage) {
      ProcessFacts& pf = facts();
      if (pf.guard_pages_used.fetch_add(1) < pf.guard_page_budget &&
          mprotect(slot, page_, PROT_NONE) == 0) {
        ++stats_.guard_pages;
      } else {
        pf.guard_pages_used.fetch_sub(1);
        s.protection = StackProtection::Checked;
      }
    }
    if (s.protection == StackProtection::GuardMarker) ++stats_.guard_markers;
    if (s.protection == StackProtection::Checked) ++stats_.checked;
  }
  if (s.protection == StackProtection::Checked)
    std::memcpy(s.lo, &kCanary, sizeof kCanary);  // a trimmed stack lost it
  bytes_in_use_.add(s.size);
  return s;
}

void StackPool::release(const StackSpan& s) noexcept {
  bytes_in_use_.sub(s.size);
  FreeList& fl = list_for(s.size);
  fl.stacks.push_back(s);
}

void StackPool::trim() noexcept {
  for (auto& fl : lists_) {
    if (fl.stacks.size() <= cache_limit_) continue;
    const std::size_t upto = fl.stacks.size() - cache_limit_;
    if (fl.trimmed >= upto) continue;
    std::vector<iovec> ranges;
    ranges.reserve(upto - fl.trimmed);
    for (std::size_t i = fl.trimmed; i < upto; ++i)
      ranges.push_back(iovec{fl.stacks[i].lo, fl.stacks[i].size});
    advise_many(ranges, MADV_DONTNEED);
    bytes_trimmed_.add((upto - fl.trimmed) * fl.size);
    fl.trimmed = upto;
  }
}

}  // namespace ringlet::detail
