// pthread_once, and pthread keys (values of fiber threads kept in their ThreadRec).
#include <errno.h>
#include <limits.h>
#include <pthread.h>

#include <linux/futex.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common.hpp"

namespace ringlet::patch::detail {

namespace {

// Key destructors, as glibc: up to PTHREAD_DESTRUCTOR_ITERATIONS rounds.
struct KeyInfo {
  std::atomic<std::uint64_t> seq{0};  // bumped at create and delete: stale values read as null
  std::atomic<void (*)(void*)> dtor{nullptr};
};
KeyInfo g_keys[kMaxKeys];

}  // namespace

void run_key_destructors(ThreadRec* r) noexcept {
  for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; ++round) {
    bool any = false;
    for (unsigned k = 0; k < r->nkeys; ++k) {
      KeyVal& kv = r->keys[k];
      if (!kv.value || kv.seq != g_keys[k].seq.load(std::memory_order_acquire)) continue;
      void (*dtor)(void*) = g_keys[k].dtor.load(std::memory_order_acquire);
      void* v = kv.value;
      kv.value = nullptr;
      if (dtor) {
        dtor(v);
        any = true;
      }
    }
    if (!any) break;
  }
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

static void* getspecific(pthread_key_t key) noexcept;
static int setspecific(pthread_key_t key, const void* value) noexcept;

// --- once and keys -----------------------------------------------------------------------

// The word keeps the encoding of the pthread_once that plain threads reach (RINGLET_REAL), so
// both may act on the same object: glibc's (0 new, bit 0 in progress, bit 1 done), or, in a
// ThreadSanitizer build, TSan's interceptor's (0 new, 1 done, bit 16 running, bit 17
// waiters). Read with glibc's bits there, a word TSan had finished (1) looked in progress
// for ever: the blocking monitor's backtrace at exit, reaching libgcc's once through this
// hook on main's fiber after a plain thread had run it through TSan's, parked for
// good (tests/patch/multicore/names.c hung at exit under TSan with the monitor on).
// A fiber that finds another thread inside
// the initialiser parks on the word in the fibers' futex table (sleeping on the kernel's
// futex would block its whole thread): an initialiser that runs here wakes it through that
// table at once. The real pthread_once (a plain thread's) wakes only the kernel's
// waiters, so each park is bounded, growing from 20 us to 1 ms, and the word read again.
#if defined(__SANITIZE_THREAD__)
static constexpr int kOnceDone = 1;
static constexpr int kOnceRunning = 1 << 16;
static bool once_done(int v) noexcept { return v == kOnceDone; }
static bool once_free(int v) noexcept { return v == 0; }
#else
static constexpr int kOnceDone = 2;
static constexpr int kOnceRunning = 1;
static bool once_done(int v) noexcept { return (v & 2) != 0; }
static bool once_free(int v) noexcept { return (v & 1) == 0; }
#endif
RINGLET_HOOK int pthread_once(pthread_once_t* once, void (*init)(void)) {
  auto* word = reinterpret_cast<std::atomic<int>*>(once);
  if (RINGLET_LIKELY(once_done(word->load(std::memory_order_acquire)))) return 0;
  Here h = on_fiber(Thread);
  if (!h) return RINGLET_REAL(pthread_once)(once, init);
  for (std::int64_t nap = 20'000;; nap = std::min<std::int64_t>(nap * 2, 1'000'000)) {
    int v = word->load(std::memory_order_acquire);
    if (once_done(v)) return 0;
    if (once_free(v)) {
      if (!word->compare_exchange_strong(v, kOnceRunning, std::memory_order_acquire)) continue;
      try {
        init();
      } catch (...) {  // also pthread_exit's unwinding: the next caller runs init again
        word->store(0, std::memory_order_release);
        futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
        throw;
      }
      word->store(kOnceDone, std::memory_order_release);
      futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
      return 0;
    }
    futex_wait_fiber(reinterpret_cast<std::uint32_t*>(word), static_cast<std::uint32_t>(v),
                     deadline_after_ns(nap), "pthread_once (patched)");
  }
}

// ThreadSanitizer's own keys (made by its start-up, before the patch's first constructor):
// it sets its key's value in a new thread before that thread has a TSan state, and again
// from the key's destructor after TSan has dropped it. Those calls go to the real functions
// with nothing instrumented on the way (bit k: key k is TSan's). Elsewhere no key is.
#if defined(__SANITIZE_THREAD__)
static std::uint64_t g_sanitizer_keys = 0;
RINGLET_NO_TSAN static bool sanitizer_key(pthread_key_t key) noexcept {
  return key < 64 && (__atomic_load_n(&g_sanitizer_keys, __ATOMIC_ACQUIRE) >> key & 1);
}
#else
static constexpr bool sanitizer_key(pthread_key_t) noexcept { return false; }
#endif

// ThreadSanitizer's start-up (InitializeInterceptors, run by the loader before main, before
// TSan has a thread state) calls this: it is not instrumented (RINGLET_NO_TSAN), and it
// keeps its bookkeeping with the __atomic builtins only (std::atomic's members would be
// instrumented calls).
RINGLET_HOOK RINGLET_NO_TSAN int pthread_key_create(pthread_key_t* key, void (*dtor)(void*)) {
  const int e = RINGLET_REAL(pthread_key_create)(key, dtor);
#if defined(__SANITIZE_THREAD__)
  if (e == 0 && *key < 64 && !__atomic_load_n(&g_tsan_started, __ATOMIC_ACQUIRE))
    __atomic_fetch_or(&g_sanitizer_keys, std::uint64_t{1} << *key, __ATOMIC_RELEASE);
#endif
  if (e == 0 && *key < kMaxKeys) {
    static_assert(sizeof(std::atomic<void (*)(void*)>) == sizeof(void (*)(void*)) &&
                  sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t));
    __atomic_store_n(reinterpret_cast<void (**)(void*)>(&g_keys[*key].dtor), dtor, __ATOMIC_RELEASE);
    __atomic_fetch_add(reinterpret_cast<std::uint64_t*>(&g_keys[*key].seq), 1, __ATOMIC_ACQ_REL);
  }
  return e;
}

RINGLET_HOOK int pthread_key_delete(pthread_key_t key) {
  const int e = RINGLET_REAL(pthread_key_delete)(key);
  if (e == 0 && key < kMaxKeys) {
    g_keys[key].dtor.store(nullptr, std::memory_order_release);
    g_keys[key].seq.fetch_add(1, std::memory_order_acq_rel);
  }
  return e;
}

RINGLET_HOOK RINGLET_NO_TSAN void* pthread_getspecific(pthread_key_t key) {
  if (RINGLET_UNLIKELY(sanitizer_key(key)))
    return RINGLET_REAL(pthread_getspecific)(key);
  return getspecific(key);
}

static void* getspecific(pthread_key_t key) noexcept {
  ThreadRec* r = current_rec();
  if (RINGLET_LIKELY(!r)) return RINGLET_REAL(pthread_getspecific)(key);
  if (key >= r->nkeys) return nullptr;
  const KeyVal& kv = r->keys[key];
  return kv.seq == g_keys[key].seq.load(std::memory_order_acquire) ? kv.value : nullptr;
}

RINGLET_HOOK RINGLET_NO_TSAN int pthread_setspecific(pthread_key_t key, const void* value) {
  if (RINGLET_UNLIKELY(sanitizer_key(key)))
    return RINGLET_REAL(pthread_setspecific)(key, value);
  return setspecific(key, value);
}

static int setspecific(pthread_key_t key, const void* value) noexcept {
  ThreadRec* r = current_rec();
  if (RINGLET_LIKELY(!r)) return RINGLET_REAL(pthread_setspecific)(key, value);
  if (key >= kMaxKeys) return EINVAL;
  if (key >= r->nkeys) {
    unsigned n = r->nkeys ? r->nkeys : 4;
    while (n <= key) n *= 2;
    if (n > kMaxKeys) n = kMaxKeys;
    auto* grown = static_cast<KeyVal*>(std::realloc(r->keys, n * sizeof(KeyVal)));
    if (!grown) return ENOMEM;
    std::memset(grown + r->nkeys, 0, (n - r->nkeys) * sizeof(KeyVal));
    r->keys = grown;
    r->nkeys = n;
  }
  r->keys[key] = KeyVal{g_keys[key].seq.load(std::memory_order_acquire), const_cast<void*>(value)};
  return 0;
}
