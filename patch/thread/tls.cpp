// TLS blocks of fiber threads (see tls.hpp): making, entering, leaving, and keeping them
// up to date when a library with static TLS is dlopen()ed.
#include "tls.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "internal/env.hpp"
#include "internal/thread_pointer.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

using ringlet::detail::home_thread_pointer;
using ringlet::detail::set_thread_pointer;
using ringlet::detail::thread_pointer;

struct TlsBlock {
  void* raw = nullptr;  // what calloc gave
  char* tcb = nullptr;  // the thread pointer: struct pthread, the static TLS area below it
  TlsBlock* prev = nullptr;
  TlsBlock* next = nullptr;
};

namespace {

// What we need of glibc, found once.
struct Glibc {
  void* (*allocate_tls)(void*) = nullptr;
  void (*deallocate_tls)(void*, bool) = nullptr;
  void (*ctype_init)() = nullptr;
  void (*call_tls_dtors)() = nullptr;
  std::size_t tcb_size = 0;      // sizeof (struct pthread)
  std::size_t static_size = 0;   // static TLS area + TCB
  std::size_t static_align = 0;
  std::size_t list_off = 0;      // struct pthread's node in glibc's thread lists
  std::size_t lm_modid_off = 0;  // struct link_map's l_tls_modid
  std::size_t lm_offset_off = 0; // struct link_map's l_tls_offset
  std::ptrdiff_t rseq_off = -1;  // struct rseq, from the thread pointer (-1: none)
  std::ptrdiff_t tcache_below = 0;  // malloc's tcache pointer: thread pointer minus its address
  std::ptrdiff_t arena_below = 0;   // malloc's thread_arena pointer, likewise
};
Glibc g;

std::atomic<int> g_mode{-1};  // -1 undecided, 0 shared, 1 per thread
std::atomic<bool> g_used{false};
std::string g_mode_text = "undecided";
std::mutex g_mu;              // the decision, the live blocks, the static modules seen
TlsBlock* g_live = nullptr;

struct StaticModule {
  const void* map;
  std::size_t offset;
};
std::vector<StaticModule> g_static;  // modules with static TLS whose image every block has

template <class F>
F private_symbol(const char* name) noexcept {
  return reinterpret_cast<F>(dlvsym(RTLD_DEFAULT, name, "GLIBC_PRIVATE"));
}
// libthread_db's descriptors: {size in bits, count, offset}.
bool db_offset(const char* name, std::size_t& out) noexcept {
  const auto* d = private_symbol<const std::uint32_t*>(name);
  if (!d) return false;
  out = d[2];
  return true;
}

void*& slot(char* tp, std::ptrdiff_t below) noexcept {
  return *reinterpret_cast<void**>(tp - below);
}

// Signals stay blocked while this thread runs on a block not its own outside the scheduler.
struct SignalsBlocked {
  sigset_t old;
  SignalsBlocked() noexcept {
    sigset_t all;
    sigfillset(&all);
    RINGLET_REAL(pthread_sigmask)(SIG_SETMASK, &all, &old);
  }
  ~SignalsBlocked() { RINGLET_REAL(pthread_sigmask)(SIG_SETMASK, &old, nullptr); }
};

std::size_t block_bytes() noexcept {
  return sizeof(TlsBlock) + alignof(std::max_align_t) + g.static_size + g.static_align;
}

// A block in `mem` (block_bytes() of it; null: from the heap). Not zeroed: glibc writes
// every loaded module's image, the surplus stays unused until a module with static TLS is
// dlopen()ed, and then sync_static_modules writes its image.
TlsBlock* make_block(void* mem, bool share_malloc) noexcept {
  void* raw = mem ? mem : std::malloc(block_bytes());
  if (!raw) return nullptr;
  auto* b = new (raw) TlsBlock;
  b->raw = mem ? nullptr : raw;
  const auto start = reinterpret_cast<std::uintptr_t>(raw) + sizeof(TlsBlock);
  const auto end = start + alignof(std::max_align_t) + g.static_size + g.static_align;
  b->tcb = reinterpret_cast<char*>((end - g.tcb_size) & ~(std::uintptr_t{g.static_align} - 1));
  char* home = static_cast<char*>(home_thread_pointer());
  std::memcpy(b->tcb, home, g.tcb_size);
  // tcbhead_t.multiple_threads: glibc skips its locks where it reads 0, and only the
  // thread that creates a real thread sets it (in its own header): a fiber thread that
  // starts one would leave the OS thread's header, and the other blocks, at 0 while a second
  // OS thread runs. Where fiber threads have blocks, every header says 1.
  constexpr std::size_t kMultipleThreads = 24;
  *reinterpret_cast<int*>(home + kMultipleThreads) = 1;
  *reinterpret_cast<int*>(b->tcb + kMultipleThreads) = 1;
  auto** header = reinterpret_cast<void**>(b->tcb);
  header[0] = b->tcb;  // tcbhead_t.tcb: what %fs:0 reads
  header[1] = nullptr; // .dtv: _dl_allocate_tls makes one
  header[2] = b->tcb;  // .self: THREAD_SELF, from which glibc finds static TLS
  auto** node = reinterpret_cast<void**>(b->tcb + g.list_off);
  node[0] = node;  // on no list of glibc's: an unlink is harmless
  node[1] = node;
  if (g.rseq_off >= 0) *reinterpret_cast<std::int32_t*>(b->tcb + g.rseq_off + 4) = -2;  // cpu_id: not registered
  if (!g.allocate_tls(b->tcb)) {
    std::free(b->raw);
    return nullptr;
  }
  if (share_malloc) {
    slot(b->tcb, g.tcache_below) = slot(home, g.tcache_below);
    slot(b->tcb, g.arena_below) = slot(home, g.arena_below);
  }
  return b;
}

void free_block(TlsBlock* b) noexcept {
  g.deallocate_tls(b->tcb, false);
  std::free(b->raw);  // null when it lived on its thread's stack
}

// --- finding malloc's per-thread pointers ------------------------------------------------

struct TlsSegment {
  const char* suffix;
  char* data = nullptr;
  std::size_t memsz = 0;
};

int find_segment(dl_phdr_info* info, std::size_t, void* arg) {
  auto* seg = static_cast<TlsSegment*>(arg);
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  const std::size_t n = std::strlen(name), k = std::strlen(seg->suffix);
  if (n < k || std::strcmp(name + n - k, seg->suffix) != 0) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type == PT_TLS) {
      seg->data = static_cast<char*>(info->dlpi_tls_data);
      seg->memsz = info->dlpi_phdr[i].p_memsz;
    }
  }
  return 1;
}

// Runs malloc(n) (and frees it) with `tcb` as the thread pointer, then puts `back` back.
// Touches no thread-local of its own. noipa and the calls through volatile pointers: at -O3
// GCC cloned this for a caller that ignores the result and dropped the malloc/free pair.
void* (*volatile g_malloc)(std::size_t) = &std::malloc;
void (*volatile g_free)(void*) = &std::free;
__attribute__((noipa)) void* malloc_on(char* tcb, void* back, std::size_t n, bool and_free) noexcept {
  set_thread_pointer(tcb);
  void* p = g_malloc(n);
  if (and_free) g_free(p);
  set_thread_pointer(back);
  asm volatile("" ::: "memory");
  return p;
}

// malloc's per-thread cache: uint16_t counts[64], then the 64 bins' first entries. A bin
// is empty exactly when its count is 0; the arena, read the same way, breaks that at once
// (its empty bins point at themselves).
constexpr int kCacheBins = 64;
bool looks_like_cache(const char* v) noexcept {
  if (!v) return false;
  const auto* counts = reinterpret_cast<const std::uint16_t*>(v);
  auto* const* entries = reinterpret_cast<void* const*>(v + kCacheBins * sizeof(std::uint16_t));
  bool any = false;
  for (int bin = 0; bin < kCacheBins; ++bin) {
    if ((counts[bin] == 0) != (entries[bin] == nullptr)) return false;
    any |= counts[bin] != 0;
  }
  return any;
}

// libc keeps `tcache` and `thread_arena` in its TLS block; a fresh block has both null and
// its first malloc sets both. Watch that happen in a probe block and tell them apart (the
// cache holds the chunk just freed, or chunks malloc moved into it). Returns "" or why not.
std::string find_malloc_slots() {
  TlsSegment seg{"/libc.so.6"};
  dl_iterate_phdr(&find_segment, &seg);
  if (!seg.data || !seg.memsz) return "libc's TLS segment was not found";
  char* here = static_cast<char*>(thread_pointer());
  const std::ptrdiff_t below = here - seg.data;
  std::free(std::malloc(40));  // this thread's own cache exists
  TlsBlock* p = make_block(nullptr, false);
  if (!p) return "out of memory";
  std::vector<unsigned char> before(seg.memsz);
  std::memcpy(before.data(), p->tcb - below, seg.memsz);
  {
    SignalsBlocked quiet;
    (void)malloc_on(p->tcb, here, 40, true);
  }
  const char* errno_at = reinterpret_cast<const char*>(&errno) - here + p->tcb;
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i + 8 <= seg.memsz; i += 8) {
    const char* w = p->tcb - below + i;
    if (errno_at >= w && errno_at < w + 8) continue;
    if (std::memcmp(before.data() + i, w, 8) != 0) changed.push_back(i);
  }
  std::string why;
  if (changed.size() != 2) {
    why = "a first malloc changed " + std::to_string(changed.size()) +
          " words of libc's thread-local block, not the 2 this glibc should";
  } else {
    char* v0 = *reinterpret_cast<char**>(p->tcb - below + changed[0]);
    char* v1 = *reinterpret_cast<char**>(p->tcb - below + changed[1]);
    const bool c0 = looks_like_cache(v0), c1 = looks_like_cache(v1);
    if (c0 == c1) {
      why = "malloc's per-thread cache was not recognised";
    } else {
      const std::size_t tc = c0 ? changed[0] : changed[1], ar = c0 ? changed[1] : changed[0];
      g.tcache_below = below - static_cast<std::ptrdiff_t>(tc);
      g.arena_below = below - static_cast<std::ptrdiff_t>(ar);
      // The probe's memory goes back: the chunks in its cache (taken out by mallocs of each
      // bin's size on the probe), then the cache itself.
      char* cache = c0 ? v0 : v1;
      const auto* counts = reinterpret_cast<const std::uint16_t*>(cache);
      std::vector<void*> chunks;
      {
        SignalsBlocked quiet;
        for (int bin = 0; bin < kCacheBins; ++bin)
          for (int guard = 0; counts[bin] > 0 && guard < 0x10000; ++guard) {
            void* c = malloc_on(p->tcb, here, 24 + 16 * static_cast<std::size_t>(bin), false);
            if (!c) break;
            chunks.push_back(c);
          }
      }
      for (void* c : chunks) std::free(c);
      std::free(cache);
      slot(p->tcb, g.tcache_below) = nullptr;
    }
  }
  free_block(p);
  return why;
}

// --- static TLS of modules loaded later --------------------------------------------------

struct LinkScan {
  std::vector<StaticModule> now;
  std::vector<StaticModule> fresh;  // not in g_static
  struct Image {
    const char* data;
    std::size_t filesz, memsz;
  };
  std::vector<Image> images;
};

const link_map* map_of(const dl_phdr_info* info) noexcept {
  for (const link_map* lm = _r_debug.r_map; lm; lm = lm->l_next)
    if (lm->l_addr == info->dlpi_addr && lm->l_name == info->dlpi_name) return lm;
  return nullptr;
}

int scan_module(dl_phdr_info* info, std::size_t, void* arg) {
  auto* s = static_cast<LinkScan*>(arg);
  if (info->dlpi_tls_modid == 0) return 0;
  const link_map* lm = map_of(info);  // dl_iterate_phdr holds the loader's lock
  if (!lm) return 0;
  const auto* base = reinterpret_cast<const char*>(lm);
  const std::size_t off = *reinterpret_cast<const std::size_t*>(base + g.lm_offset_off);
  if (off == 0 || off == static_cast<std::size_t>(-1)) return 0;  // dynamic TLS
  const StaticModule m{lm, off};
  s->now.push_back(m);
  for (const StaticModule& k : g_static)
    if (k.map == m.map && k.offset == m.offset) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_TLS) continue;
    s->fresh.push_back(m);
    s->images.push_back({reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr), ph.p_filesz, ph.p_memsz});
  }
  return 0;
}

// Under g_mu: copy the image of every static-TLS module not seen before into every live
// block (glibc did it for its own threads), and forget modules that are gone.
// The loader's counts of loads and unloads at the last sync: nothing to do while they hold.
unsigned long long g_adds = 0, g_subs = 0;

int read_counts(dl_phdr_info* info, std::size_t size, void* arg) {
  auto* c = static_cast<unsigned long long*>(arg);
  if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
  }
  return 1;  // the counts are the same in every entry: one is enough
}

void sync_static_modules() noexcept {
  unsigned long long counts[2] = {0, 0};
  dl_iterate_phdr(&read_counts, counts);
  if (counts[0] && counts[0] == g_adds && counts[1] == g_subs) return;
  g_adds = counts[0];
  g_subs = counts[1];
  LinkScan s;
  try {
    dl_iterate_phdr(&scan_module, &s);
  } catch (...) {
    return;  // out of memory: the blocks keep what they have
  }
  for (std::size_t i = 0; i < s.fresh.size(); ++i) {
    const auto& img = s.images[i];
    for (TlsBlock* b = g_live; b; b = b->next) {
      char* dst = b->tcb - s.fresh[i].offset;
      std::memcpy(dst, img.data, img.filesz);
      std::memset(dst + img.filesz, 0, img.memsz - img.filesz);
    }
  }
  g_static.swap(s.now);
}

std::string decide() {
  const char* env = std::getenv("RINGLET_THREAD_TLS");
  if (env && std::strcmp(env, "shared") == 0) return "asked for (RINGLET_THREAD_TLS=shared)";
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  return "a sanitizer build: the sanitizer keeps its own thread state in thread-locals";
#endif
  const bool forced = env && std::strcmp(env, "own") == 0;
  if (env && *env && !forced)
    std::fprintf(stderr, "ringlet patch: RINGLET_THREAD_TLS='%s' is neither 'shared' nor 'own'; using the default\n", env);
  if (!forced && std::strcmp(gnu_get_libc_version(), "2.36") != 0)
    return std::string("glibc ") + gnu_get_libc_version() +
           " is not the version this was tested on (2.36); RINGLET_THREAD_TLS=own tries anyway";
  g.allocate_tls = private_symbol<void* (*)(void*)>("_dl_allocate_tls");
  g.deallocate_tls = private_symbol<void (*)(void*, bool)>("_dl_deallocate_tls");
  g.ctype_init = private_symbol<void (*)()>("__ctype_init");
  g.call_tls_dtors = private_symbol<void (*)()>("__call_tls_dtors");
  auto static_info = private_symbol<void (*)(std::size_t*, std::size_t*)>("_dl_get_tls_static_info");
  const auto* sizeof_pthread = private_symbol<const std::uint32_t*>("_thread_db_sizeof_pthread");
  if (!g.allocate_tls || !g.deallocate_tls || !g.ctype_init || !g.call_tls_dtors || !static_info ||
      !sizeof_pthread || !db_offset("_thread_db_pthread_list", g.list_off) ||
      !db_offset("_thread_db_link_map_l_tls_modid", g.lm_modid_off) ||
      !db_offset("_thread_db_link_map_l_tls_offset", g.lm_offset_off))
    return "this glibc lacks a private symbol it needs (_dl_allocate_tls and friends)";
  g.tcb_size = sizeof_pthread[0];
  static_info(&g.static_size, &g.static_align);
  if (g.tcb_size < 3 * sizeof(void*) || g.list_off + 2 * sizeof(void*) > g.tcb_size ||
      g.static_size < g.tcb_size || !g.static_align || (g.static_align & (g.static_align - 1)))
    return "glibc's thread layout is not the expected one";
  const auto* rseq_off = static_cast<const std::ptrdiff_t*>(dlsym(RTLD_DEFAULT, "__rseq_offset"));
  const auto* rseq_size = static_cast<const unsigned*>(dlsym(RTLD_DEFAULT, "__rseq_size"));
  if (rseq_off && rseq_size && *rseq_size >= 8 && *rseq_off >= 0 &&
      static_cast<std::size_t>(*rseq_off) + 8 <= g.tcb_size)
    g.rseq_off = *rseq_off;
  if (std::string why = find_malloc_slots(); !why.empty()) return why;
  LinkScan s;
  dl_iterate_phdr(&scan_module, &s);
  g_static.swap(s.now);
  return "";
}

int decide_locked() noexcept {
  int m = g_mode.load(std::memory_order_acquire);
  if (m >= 0) return m;
  std::string why;
  try {
    why = decide();
  } catch (...) {
    why = "out of memory";
  }
  const bool asked = why.rfind("asked", 0) == 0;
  m = why.empty() ? 1 : 0;
  g_mode_text = m ? std::string("per thread (") + ringlet::detail::thread_pointer_method() + ")"
                  : "shared between the fiber threads of an OS thread: " + why;
  if (ringlet::detail::env_verbose() || (!m && !asked))
    std::fprintf(stderr, "ringlet patch: thread-locals: %s\n", g_mode_text.c_str());
  g_mode.store(m, std::memory_order_release);
  return m;
}

}  // namespace

bool tls_per_thread() noexcept {
  const int m = g_mode.load(std::memory_order_acquire);
  if (RINGLET_LIKELY(m >= 0)) return m == 1;
  std::lock_guard<std::mutex> lock(g_mu);
  return decide_locked() == 1;
}

bool tls_blocks_in_use() noexcept { return g_used.load(std::memory_order_relaxed); }

const char* tls_mode() noexcept { return g_mode_text.c_str(); }

std::size_t tls_block_bytes() noexcept { return block_bytes(); }

TlsBlock* tls_block_create(void* mem) noexcept {
  std::lock_guard<std::mutex> lock(g_mu);
  if (decide_locked() != 1) return nullptr;
  sync_static_modules();  // a module loaded behind our back reaches the older blocks now
  TlsBlock* b = make_block(mem, true);
  if (!b) return nullptr;
  b->next = g_live;
  if (g_live) g_live->prev = b;
  g_live = b;
  g_used.store(true, std::memory_order_relaxed);
  return b;
}

void tls_block_enter(TlsBlock* b) noexcept {
  ringlet::detail::adopt_thread_pointer(b->tcb);
  g.ctype_init();  // the <ctype.h> tables' pointers, as glibc's start_thread sets them
}

void tls_after_fork_child(TlsBlock* mine) noexcept {
  if (!mine || g.list_off == 0) return;
  // glibc's fork puts the thread it finds through THREAD_SELF, this block, on its list of
  // threads; the block goes away with its thread, so it must not stay there. The child has
  // one thread: no lock to take.
  auto** node = reinterpret_cast<void**>(mine->tcb + g.list_off);
  auto** next = static_cast<void**>(node[0]);
  auto** prev = static_cast<void**>(node[1]);
  if (next != reinterpret_cast<void*>(node)) {
    prev[0] = next;
    next[1] = prev;
    node[0] = node;
    node[1] = node;
  }
}

void tls_out_of_memory() noexcept {
  static std::atomic<bool> said{false};
  if (!said.exchange(true))
    std::fprintf(stderr, "ringlet patch: a fiber thread found no memory for its TLS block; it shares its "
                         "OS thread's thread-locals (said once)\n");
}

void tls_run_destructors() noexcept { g.call_tls_dtors(); }

namespace {
void unlink_and_free(TlsBlock* b) noexcept {
  std::lock_guard<std::mutex> lock(g_mu);
  if (b->prev) b->prev->next = b->next;
  else g_live = b->next;
  if (b->next) b->next->prev = b->prev;
  free_block(b);
}
}  // namespace

void tls_block_leave(TlsBlock* b) noexcept {
  // dlerror() keeps its message in a buffer per thread that only glibc's thread exit
  // frees: a first call hands it over, a second frees it.
  (void)dlerror();
  (void)dlerror();
  ringlet::detail::adopt_thread_pointer(nullptr);
  unlink_and_free(b);
}

// --- dlopen / dlclose ----------------------------------------------------------------------

void tls_after_dlopen() noexcept {
  if (!tls_blocks_in_use()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  sync_static_modules();
}

}  // namespace ringlet::patch::detail
