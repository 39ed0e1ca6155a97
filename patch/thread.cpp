// The thread group: POSIX threads become fibers.
//
// pthread_create on a fiber starts a fiber on the same scheduler (a "fiber thread") and hands
// back a handle that is the address of its record with the low bit set, so no real pthread_t
// is ever mistaken for one (those are aligned pointers). Every pthread call that takes a
// pthread_t is hooked to understand these handles.
//
// The synchronisation objects (mutexes, condition variables, rwlocks, barriers, unnamed
// semaphores) are reimplemented inside the caller's own pthread_mutex_t / pthread_cond_t /
// ... storage, for fibers and plain threads alike: a fiber that waits parks (its scheduler
// runs the others), a plain thread sleeps on a futex. Because one representation must serve
// every caller for the object's whole life, the choice is made once, when the library loads
// (RINGLET_PATCH without "-thread"), and holds for the whole process. Objects shared between
// processes (PTHREAD_PROCESS_SHARED), robust and priority-protocol mutexes keep glibc's own
// implementation: they live in memory other processes read.
//
// Nothing here throws into C code. Waits on these objects are not interruptible by kill()
// (a C caller has no way to see GreenletExit); sem_wait answers EINTR to a signal, as
// the kernel's does.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include <linux/futex.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "ringlet/fiber.hpp"
#include "ringlet/detail/wait.hpp"
#include "detail/sys.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

using ringlet::Deadline;
using ringlet::detail::SpinLock;
using ringlet::detail::Waiter;
using ringlet::detail::WaitList;
using ringlet::detail::WakeReason;

namespace {

// --- is the thread group on? -------------------------------------------------------------

// Decided on first use (a hook may run before our constructor) from RINGLET_PATCH, then
// fixed: 1 = fiber-aware objects, 0 = glibc's. -1 = not decided yet.
std::atomic<int> g_sync{-1};

int decide_sync() noexcept {
  int on = 1;
  if (const char* spec = std::getenv("RINGLET_PATCH")) {
    unsigned groups = All;
    std::string error;
    if (parse_groups(spec, groups, error)) on = (groups & Thread) ? 1 : 0;
  }
  int expected = -1;
  g_sync.compare_exchange_strong(expected, on);
  return g_sync.load();
}

inline bool sync_patched() noexcept {
  const int v = g_sync.load(std::memory_order_relaxed);
  return RINGLET_LIKELY(v > 0) || (v < 0 && decide_sync() > 0);
}

inline bool thread_group_on() noexcept {
  return (g_groups.load(std::memory_order_relaxed) & Thread) != 0 && sync_patched();
}

// --- time --------------------------------------------------------------------------------

bool valid_timespec(const timespec* ts) noexcept {
  return ts && ts->tv_nsec >= 0 && ts->tv_nsec < 1'000'000'000;
}

// An absolute time on `clock` as a monotonic Deadline.
Deadline deadline_at(clockid_t clock, const timespec* abs) noexcept {
  if (clock == CLOCK_MONOTONIC)  // Deadline's own clock
    return Deadline{std::chrono::steady_clock::time_point(std::chrono::seconds(abs->tv_sec) +
                                                          std::chrono::nanoseconds(abs->tv_nsec))};
  timespec now{};
  ::clock_gettime(clock, &now);
  const std::int64_t ns = (abs->tv_sec - now.tv_sec) * 1'000'000'000LL + (abs->tv_nsec - now.tv_nsec);
  return deadline_after_ns(ns < 0 ? 0 : ns);
}

// --- futexes for plain threads -----------------------------------------------------------

long futex(void* addr, int op, std::uint32_t val, const timespec* ts) noexcept {
  return ::syscall(SYS_futex, addr, op, val, ts, nullptr, FUTEX_BITSET_MATCH_ANY);
}

// Sleep while *word == expected, until the monotonic deadline. Returns the errno
// (0, EAGAIN, ETIMEDOUT, EINTR).
int futex_wait_until(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline d) noexcept {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (!d.is_never()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time().time_since_epoch()).count();
    ts = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    tsp = &ts;
  }
  if (futex(word, FUTEX_WAIT_BITSET_PRIVATE, expected, tsp) == 0) return 0;
  return errno;
}

void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept {
  futex(word, FUTEX_WAKE_PRIVATE, static_cast<std::uint32_t>(n), nullptr);
}

// --- the one wait ------------------------------------------------------------------------

// Park the caller on `w`, which it armed and pushed into `list` while holding `sp`. Unlocks
// while waiting, relocks, unlinks. Returns true if a notifier claimed it, false if the
// deadline passed first. Not interruptible by kill or the deadlock breaker.
bool wait_on(SpinLock& sp, WaitList& list, Waiter& w, Deadline d, const char* what) noexcept {
  if (w.fiber) {
    Scheduler& s = *w.fiber->sched;
    s.primitive_wait_begin();
    sp.unlock();
    s.park(w.token, d, ringlet::detail::WaitInfo{what, nullptr}, /*interruptible=*/false);
    sp.lock();
    s.primitive_wait_end();
    list.remove(&w);
    return w.granted;
  }
  auto& epoch = w.parker->epoch;
  const auto token = static_cast<std::uint32_t>(w.token);
  sp.unlock();
  bool timed_out = false;
  for (;;) {
    if (epoch.load(std::memory_order_acquire) != token) break;  // claimed
    if (!d.is_never() && d.passed()) {
      std::uint32_t expected = token;
      if (epoch.compare_exchange_strong(expected, token + 1, std::memory_order_acq_rel)) {
        timed_out = true;
        break;
      }
      continue;  // a claim won just now
    }
    futex_wait_until(&epoch, token, d);
  }
  sp.lock();
  list.remove(&w);
  return !timed_out;
}

// --- mutexes -----------------------------------------------------------------------------

// Our layout inside pthread_mutex_t (40 bytes). __kind stays where glibc's static
// initialisers put it (PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP...), and all zeroes is an
// unlocked normal mutex, as PTHREAD_MUTEX_INITIALIZER says.
struct PMutex {
  std::atomic<std::uint32_t> state;  // 0 free, 1 held, 2 held and waiters may exist
  std::uint32_t depth;               // recursive: times held beyond the first
  std::atomic<const void*> owner;    // recursive and error-checking kinds only
  int kind;                          // glibc's __kind
  SpinLock spin;
  char pad_[3];
  WaitList waiters;
};
static_assert(sizeof(PMutex) == sizeof(pthread_mutex_t));
static_assert(offsetof(PMutex, kind) == 16);

constexpr int kKindType = 3;                  // NORMAL/TIMED, RECURSIVE, ERRORCHECK, ADAPTIVE
constexpr int kKindForeign = 16 | 32 | 64 | 128;  // robust, prio-inherit, prio-protect, pshared

inline PMutex* pm(pthread_mutex_t* m) noexcept { return reinterpret_cast<PMutex*>(m); }
inline bool foreign(const PMutex* p) noexcept { return (p->kind & kKindForeign) != 0; }
inline int mtype(const PMutex* p) noexcept {
  const int t = p->kind & kKindType;
  return t == PTHREAD_MUTEX_ADAPTIVE_NP ? PTHREAD_MUTEX_NORMAL : t;
}

// Take a free mutex (state 0 -> 1) without waiting.
inline bool try_take(PMutex* p) noexcept {
  std::uint32_t e = 0;
  return p->state.compare_exchange_strong(e, 1, std::memory_order_acquire, std::memory_order_relaxed);
}

// Contended: wait on the list, barging allowed (as glibc): a woken waiter competes again.
int lock_wait(PMutex* p, Deadline d) noexcept {
  bool waited = false;
  p->spin.lock();
  for (;;) {
    if (p->state.exchange(2, std::memory_order_acquire) == 0) break;
    Waiter w;
    w.arm();
    p->waiters.push(&w);
    waited = true;
    if (!wait_on(p->spin, p->waiters, w, d, "pthread_mutex_lock (patched)") &&
        !d.is_never() && d.passed()) {
      p->spin.unlock();
      return ETIMEDOUT;
    }
  }
  p->spin.unlock();
  if (waited) count_waited(Call::pthread_mutex_lock);
  return 0;
}

int mutex_lock(PMutex* p, Deadline d, bool try_only) noexcept {
  const int type = mtype(p);
  const void* self = nullptr;
  if (type != PTHREAD_MUTEX_NORMAL) {
    self = ringlet::detail::self_identity();
    if (p->owner.load(std::memory_order_relaxed) == self) {
      if (type == PTHREAD_MUTEX_ERRORCHECK) return try_only ? EBUSY : EDEADLK;
      if (p->depth == UINT_MAX - 1) return EAGAIN;
      ++p->depth;
      return 0;
    }
  }
  if (!try_take(p)) {
    if (try_only) return EBUSY;
    if (const int e = lock_wait(p, d)) return e;
  }
  if (self) {
    p->owner.store(self, std::memory_order_relaxed);
    p->depth = 0;
  }
  return 0;
}

int mutex_unlock(PMutex* p) noexcept {
  const int type = mtype(p);
  if (type != PTHREAD_MUTEX_NORMAL) {
    if (p->owner.load(std::memory_order_relaxed) != ringlet::detail::self_identity() ||
        p->state.load(std::memory_order_relaxed) == 0)
      return EPERM;
    if (p->depth > 0) {
      --p->depth;
      return 0;
    }
    p->owner.store(nullptr, std::memory_order_relaxed);
  }
  if (p->state.exchange(0, std::memory_order_release) == 2) {
    p->spin.lock();
    p->waiters.grant_one();
    p->spin.unlock();
  }
  return 0;
}

// --- fiber threads -----------------------------------------------------------------------

constexpr std::uint64_t kThreadMagic = 0x52474c5448524421ull;  // "RGLTHRD!"
constexpr unsigned kMaxKeys = PTHREAD_KEYS_MAX;

struct KeyVal {
  std::uint64_t seq;
  void* value;
};

struct ThreadRec {
  std::uint64_t magic = kThreadMagic;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;
  ringlet::BasicGreenlet handle;  // keeps the fiber's control block alive
  SpinLock mu;
  WaitList joiners;
  bool done = false;
  bool detached = false;
  bool joined = false;           // a join took the result (or one is in progress)
  std::atomic<bool> cancel{false};
  KeyVal* keys = nullptr;        // values of pthread keys for this thread, grown on demand
  unsigned nkeys = 0;
  jmp_buf exit_jb;
  _Unwind_Exception exit_exc;
  pthread_t carrier{};
  sigset_t sigmask;  // the thread's own signal mask: bookkeeping only (see pthread_sigmask)
};

inline pthread_t handle_of(ThreadRec* r) noexcept {
  return reinterpret_cast<pthread_t>(reinterpret_cast<std::uintptr_t>(r) | 1u);
}
inline ThreadRec* rec_of(pthread_t t) noexcept {
  const auto v = static_cast<std::uintptr_t>(t);
  if (!(v & 1u)) return nullptr;
  auto* r = reinterpret_cast<ThreadRec*>(v & ~std::uintptr_t{1});
  return r->magic == kThreadMagic ? r : nullptr;
}
// The fiber thread running here, if the caller is one.
inline ThreadRec* current_rec() noexcept {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s)) return nullptr;
  Fiber* f = s->running();
  return f ? static_cast<ThreadRec*>(f->patch_thread) : nullptr;
}
inline bool is_fake(pthread_t t) noexcept { return (static_cast<std::uintptr_t>(t) & 1u) != 0; }

void free_rec(ThreadRec* r) noexcept {
  r->magic = 0;
  if (Fiber* f = r->handle.native()) f->patch_thread = nullptr;
  std::free(r->keys);
  delete r;
}

// Key destructors, as glibc: up to PTHREAD_DESTRUCTOR_ITERATIONS rounds.
struct KeyInfo {
  std::atomic<std::uint64_t> seq{0};  // bumped at create and delete: stale values read as null
  std::atomic<void (*)(void*)> dtor{nullptr};
};
KeyInfo g_keys[kMaxKeys];

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

void finish_thread(ThreadRec* r, void* result) noexcept {
  run_key_destructors(r);
  r->mu.lock();
  r->result = result;
  r->done = true;
  r->joiners.grant_all();
  const bool free_now = r->detached;
  r->mu.unlock();
  if (free_now) free_rec(r);
}

std::atomic<std::uint64_t> g_thread_seq{0};

_Unwind_Reason_Code exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                              _Unwind_Exception*, _Unwind_Context* ctx, void* param);

// The body of every fiber thread. Not inlined: pthread_exit's unwinding stops at its frame.
__attribute__((noinline)) void thread_body(ThreadRec* r) noexcept {
  r->carrier = RINGLET_REAL(pthread_self)();
  void* result;
  if (setjmp(r->exit_jb) == 0) {
    result = r->start(r->arg);
  } else {
    result = r->result;  // pthread_exit's value; the frames above were unwound
  }
  finish_thread(r, result);
}

_Unwind_Reason_Code exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                              _Unwind_Exception*, _Unwind_Context* ctx, void* param) {
  auto* r = static_cast<ThreadRec*>(param);
  if ((actions & _UA_END_OF_STACK) ||
      _Unwind_GetRegionStart(ctx) == reinterpret_cast<_Unwind_Ptr>(&thread_body))
    longjmp(r->exit_jb, 1);
  return _URC_NO_REASON;
}

void exit_not_rethrown(_Unwind_Reason_Code, _Unwind_Exception*) {
  static const char msg[] =
      "ringlet patch: pthread_exit on a fiber thread was caught and not rethrown (a catch(...) "
      "must rethrow abi::__forced_unwind)\n";
  (void)ringlet::detail::sys::write(2, msg, sizeof msg - 1);
  std::abort();
}

[[noreturn]] void exit_fiber_thread(ThreadRec* r, void* value) {
  r->result = value;
  std::memset(&r->exit_exc, 0, sizeof r->exit_exc);
  r->exit_exc.exception_class = 0x52474c5400455849ull;  // "RGLT\0EXI"
  r->exit_exc.exception_cleanup = &exit_not_rethrown;
  _Unwind_ForcedUnwind(&r->exit_exc, &exit_stop, r);
  std::abort();  // the unwinder found no way back to thread_body
}

// pthread_exit on the main fiber of a whole-binary program (start.cpp sets it up).
jmp_buf* g_main_exit_jb = nullptr;
Fiber* g_main_fiber = nullptr;
void* g_main_exit_body = nullptr;

_Unwind_Reason_Code main_exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                                   _Unwind_Exception*, _Unwind_Context* ctx, void*) {
  if ((actions & _UA_END_OF_STACK) ||
      _Unwind_GetRegionStart(ctx) == reinterpret_cast<_Unwind_Ptr>(g_main_exit_body))
    longjmp(*g_main_exit_jb, 1);
  return _URC_NO_REASON;
}

_Unwind_Exception g_main_exit_exc;

std::size_t default_thread_stack() noexcept {
  static std::size_t cached = [] {
    std::size_t n = 8u << 20;
    if (const char* v = std::getenv("RINGLET_THREAD_STACK"); v && *v) {
      char* end = nullptr;
      unsigned long long x = std::strtoull(v, &end, 10);
      if (end && (*end == 'k' || *end == 'K')) x <<= 10, ++end;
      else if (end && (*end == 'm' || *end == 'M')) x <<= 20, ++end;
      if (end != v && *end == '\0' && x >= (16u << 10) && x <= (1ull << 30)) return static_cast<std::size_t>(x);
      std::fprintf(stderr, "ringlet patch: RINGLET_THREAD_STACK='%s' is not a size between 16K and 1024M; using the default\n", v);
    }
    rlimit rl{};
    if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) n = rl.rlim_cur;
    if (n < (64u << 10)) n = 64u << 10;
    if (n > (1u << 30)) n = 1u << 30;
    return n;
  }();
  return cached;
}

RINGLET_SLOW int create_fiber_thread(pthread_t* out, const pthread_attr_t* attr,
                                     void* (*fn)(void*), void* arg) {
  std::size_t stack = default_thread_stack();
  bool detached = false;
  if (attr) {
    std::size_t ss = 0;
    if (pthread_attr_getstacksize(attr, &ss) == 0 && ss) stack = ss;
    int ds = PTHREAD_CREATE_JOINABLE;
    if (pthread_attr_getdetachstate(attr, &ds) == 0) detached = ds == PTHREAD_CREATE_DETACHED;
  }
  auto* r = new (std::nothrow) ThreadRec;
  if (!r) return EAGAIN;
  r->start = fn;
  r->arg = arg;
  r->detached = detached;
  // A new thread starts with its creator's mask.
  if (ThreadRec* parent = current_rec()) r->sigmask = parent->sigmask;
  else RINGLET_REAL(pthread_sigmask)(SIG_BLOCK, nullptr, &r->sigmask);
  try {
    ringlet::SpawnOptions o;
    o.stack_size = stack;
    o.name = "thread-" + std::to_string(g_thread_seq.fetch_add(1, std::memory_order_relaxed) + 1);
    r->handle = ringlet::spawn(o, [r]() noexcept { thread_body(r); });
  } catch (...) {
    free_rec(r);
    return EAGAIN;  // no stack could be mapped: what pthread_create says
  }
  r->handle.native()->patch_thread = r;
  *out = handle_of(r);
  count_on_fiber(Call::pthread_create);
  return 0;
}

int join_fiber_thread(ThreadRec* r, void** ret, Deadline d, bool try_only) noexcept {
  if (r == current_rec()) return EDEADLK;
  r->mu.lock();
  if (r->detached || r->joined) {
    r->mu.unlock();
    return EINVAL;
  }
  r->joined = true;
  while (!r->done) {
    if (try_only) {
      r->joined = false;
      r->mu.unlock();
      return EBUSY;
    }
    Waiter w;
    w.arm();
    r->joiners.push(&w);
    count_waited(Call::pthread_join);
    if (!wait_on(r->mu, r->joiners, w, d, "pthread_join (patched)") && !r->done &&
        !d.is_never() && d.passed()) {
      r->joined = false;
      r->mu.unlock();
      return ETIMEDOUT;
    }
  }
  void* result = r->result;
  r->mu.unlock();
  if (ret) *ret = result;
  free_rec(r);
  return 0;
}

// A fiber joining a real thread: poll, so the scheduler's other fibers keep running.
int join_real_on_fiber(Here h, pthread_t t, void** ret, Deadline d) noexcept {
  for (std::int64_t nap = 50'000;; nap = std::min<std::int64_t>(nap * 2, 5'000'000)) {
    const int e = RINGLET_REAL(pthread_tryjoin_np)(t, ret);
    if (e != EBUSY) return e;
    if (!d.is_never() && d.passed()) return ETIMEDOUT;
    timed_sleep(h, ringlet::earliest(d, deadline_after_ns(nap)));
  }
}

// --- condition variables -----------------------------------------------------------------

struct PCond {
  SpinLock spin;
  char pad_[7];
  WaitList waiters;
  std::uint32_t unused_[3];
  std::uint32_t flags;  // glibc's __wrefs bits: 1 process-shared, 2 CLOCK_MONOTONIC
  std::uint32_t unused2_[2];
};
static_assert(sizeof(PCond) == sizeof(pthread_cond_t));
static_assert(offsetof(PCond, flags) == 36);
constexpr std::uint32_t kCondShared = 1, kCondMonotonic = 2;

inline PCond* pc(pthread_cond_t* c) noexcept { return reinterpret_cast<PCond*>(c); }

int cond_wait(PCond* c, pthread_mutex_t* m, Deadline d) noexcept {
  PMutex* p = pm(m);
  if (foreign(p)) return EINVAL;  // a robust/PI/shared mutex with a private condvar: unsupported
  if (mtype(p) != PTHREAD_MUTEX_NORMAL &&
      p->owner.load(std::memory_order_relaxed) != ringlet::detail::self_identity())
    return EPERM;
  Waiter w;
  w.arm();
  c->spin.lock();
  c->waiters.push(&w);
  // Give the mutex up entirely (a recursive one however deep), after registering: a notify
  // that follows the unlock finds us.
  const std::uint32_t depth = p->depth;
  p->depth = 0;
  mutex_unlock(p);
  const bool notified = wait_on(c->spin, c->waiters, w, d, "pthread_cond_wait (patched)");
  c->spin.unlock();
  count_waited(Call::pthread_cond_wait);
  mutex_lock(p, Deadline::never(), false);
  p->depth = depth;
  return notified || d.is_never() || !d.passed() ? 0 : ETIMEDOUT;
}

// --- rwlocks -----------------------------------------------------------------------------

struct PRw {
  SpinLock spin;
  char pad_[3];
  std::uint32_t readers;
  const void* writer;
  std::uint32_t unused_[3];
  int shared;  // glibc's __shared
  WaitList waiters;
  std::uint32_t flags;
  std::uint32_t unused2_;
};
static_assert(sizeof(PRw) == sizeof(pthread_rwlock_t));
static_assert(offsetof(PRw, shared) == 28);

inline PRw* prw(pthread_rwlock_t* l) noexcept { return reinterpret_cast<PRw*>(l); }

// Readers are preferred (glibc's default): a reader enters whenever no writer holds the lock,
// so a thread may take a read lock it already holds without deadlocking.
int rw_lock(PRw* l, bool write, Deadline d, bool try_only) noexcept {
  const void* self = ringlet::detail::self_identity();
  l->spin.lock();
  if (l->writer == self) {
    l->spin.unlock();
    return try_only ? EBUSY : EDEADLK;
  }
  bool waited = false;
  for (;;) {
    const bool free = write ? (!l->writer && l->readers == 0) : !l->writer;
    if (free) break;
    if (try_only) {
      l->spin.unlock();
      return EBUSY;
    }
    Waiter w;
    w.arm();
    l->waiters.push(&w);
    waited = true;
    if (!wait_on(l->spin, l->waiters, w, d, write ? "pthread_rwlock_wrlock (patched)"
                                                  : "pthread_rwlock_rdlock (patched)") &&
        !d.is_never() && d.passed()) {
      l->spin.unlock();
      return ETIMEDOUT;
    }
  }
  if (write) l->writer = self;
  else if (l->readers == UINT_MAX) {
    l->spin.unlock();
    return EAGAIN;
  } else ++l->readers;
  l->spin.unlock();
  if (waited) count_waited(Call::pthread_rwlock);
  return 0;
}

int rw_unlock(PRw* l) noexcept {
  const void* self = ringlet::detail::self_identity();
  l->spin.lock();
  if (l->writer) {
    if (l->writer != self) {
      l->spin.unlock();
      return EPERM;
    }
    l->writer = nullptr;
  } else if (l->readers > 0) {
    --l->readers;
  } else {
    l->spin.unlock();
    return EPERM;
  }
  if (!l->writer && l->readers == 0) l->waiters.grant_all();  // they compete again
  l->spin.unlock();
  return 0;
}

// --- barriers ----------------------------------------------------------------------------

struct BarrierState {
  SpinLock spin;
  WaitList waiters;
  unsigned count = 0;
  unsigned arrived = 0;
};
struct PBarrier {
  std::uint64_t unused_[2];
  BarrierState* state;
  std::uint64_t magic;
};
static_assert(sizeof(PBarrier) == sizeof(pthread_barrier_t));
constexpr std::uint64_t kBarrierMagic = 0x52474c5442415252ull;  // "RGLTBARR"

inline PBarrier* pb(pthread_barrier_t* b) noexcept { return reinterpret_cast<PBarrier*>(b); }

// --- semaphores --------------------------------------------------------------------------

struct PSem {
  std::atomic<std::uint32_t> value;
  std::atomic<std::uint32_t> thread_waiters;  // plain threads asleep on the value's futex
  std::uint32_t magic;                        // glibc's `private` field holds 0 or 128
  SpinLock spin;
  char pad_[3];
  WaitList fibers;                            // fibers parked in sem_wait
};
static_assert(sizeof(PSem) == sizeof(sem_t));
constexpr std::uint32_t kSemMagic = 0x52474c53u;  // "RGLS"

inline PSem* ps(sem_t* s) noexcept { return reinterpret_cast<PSem*>(s); }
inline bool our_sem(const PSem* s) noexcept { return s->magic == kSemMagic; }

bool sem_take(PSem* s) noexcept {
  std::uint32_t v = s->value.load(std::memory_order_relaxed);
  while (v > 0)
    if (s->value.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  return false;
}

int sem_wait_until(PSem* s, Deadline d) noexcept {
  if (sem_take(s)) return 0;
  Scheduler* sch = Scheduler::current();
  Fiber* f = sch ? sch->running() : nullptr;
  count_waited(Call::sem_wait);
  if (!f) {
    s->thread_waiters.fetch_add(1, std::memory_order_acq_rel);
    int e = 0;
    while (!sem_take(s)) {
      if (!d.is_never() && d.passed()) {
        e = ETIMEDOUT;
        break;
      }
      const int r = futex_wait_until(&s->value, 0, d);
      if (r == EINTR) {
        if (sem_take(s)) break;
        e = EINTR;
        break;
      }
    }
    s->thread_waiters.fetch_sub(1, std::memory_order_acq_rel);
    return e;
  }
  // A fiber: park on the list, interruptible so a signal handler's sem_post (which must not
  // take our spinlock) or any signal ends the wait as it would end the futex wait.
  for (;;) {
    Waiter w;
    s->spin.lock();
    if (sem_take(s)) {
      s->spin.unlock();
      return 0;
    }
    w.arm();
    s->fibers.push(&w);
    s->spin.unlock();
    WakeReason r;
    {
      ringlet::detail::InterruptScope scope;
      sch->primitive_wait_begin();
      r = sch->park(w.token, ringlet::earliest(d, f->deadline.deadline),
                    ringlet::detail::WaitInfo{"sem_wait (patched)", nullptr}, /*interruptible=*/true);
      sch->primitive_wait_end();
    }
    s->spin.lock();
    s->fibers.remove(&w);
    s->spin.unlock();
    if (sem_take(s)) return 0;
    const Outcome o = outcome_of(r, f, d);
    if (o == Outcome::Done) continue;
    if (o == Outcome::Deadline) return ETIMEDOUT;
    return o == Outcome::ScopedTimeout ? ETIMEDOUT : EINTR;
  }
}

}  // namespace

// --- start.cpp's side of pthread_exit on the main fiber ----------------------------------

void set_main_exit(void* jb, void* body) noexcept {
  g_main_exit_jb = static_cast<jmp_buf*>(jb);
  g_main_exit_body = body;
  Scheduler* s = Scheduler::current();
  g_main_fiber = s ? s->running() : nullptr;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- threads -----------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer intercepts pthread_create ahead of us and runs the start routine through
// its own thread set-up, which needs a new OS thread: in sanitizer builds threads stay real
// (the synchronisation objects are still ours, and exercised by real threads).
constexpr bool kThreadsBecomeFibers = false;
#else
constexpr bool kThreadsBecomeFibers = true;
#endif

RINGLET_HOOK int pthread_create(pthread_t* out, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s) || !s->running() || ringlet::detail::tls_native_thread_scope ||
      !kThreadsBecomeFibers || !thread_group_on()) {
    count_passed(Call::pthread_create);
    return RINGLET_REAL(pthread_create)(out, attr, fn, arg);
  }
  return create_fiber_thread(out, attr, fn, arg);
}

RINGLET_HOOK pthread_t pthread_self(void) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) return handle_of(r);
  return RINGLET_REAL(pthread_self)();
}

RINGLET_HOOK int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

RINGLET_HOOK int pthread_join(pthread_t t, void** ret) {
  if (is_fake(t)) {
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, Deadline::never(), false) : ESRCH;
  }
  if (Here h = on_fiber(Thread)) return join_real_on_fiber(h, t, ret, Deadline::never());
  return RINGLET_REAL(pthread_join)(t, ret);
}

RINGLET_HOOK int pthread_tryjoin_np(pthread_t t, void** ret) {
  if (is_fake(t)) {
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, Deadline::never(), true) : ESRCH;
  }
  return RINGLET_REAL(pthread_tryjoin_np)(t, ret);
}

RINGLET_HOOK int pthread_timedjoin_np(pthread_t t, void** ret, const struct timespec* abs) {
  if (is_fake(t) || on_fiber(Thread)) {
    Deadline d = Deadline::never();
    if (abs) {
      if (!valid_timespec(abs)) return EINVAL;
      d = deadline_at(CLOCK_REALTIME, abs);
    }
    if (!is_fake(t)) return join_real_on_fiber(on_fiber(Thread), t, ret, d);
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, d, false) : ESRCH;
  }
  return RINGLET_REAL(pthread_timedjoin_np)(t, ret, abs);
}

RINGLET_HOOK int pthread_clockjoin_np(pthread_t t, void** ret, clockid_t clock, const struct timespec* abs) {
  if (is_fake(t) || on_fiber(Thread)) {
    Deadline d = Deadline::never();
    if (abs) {
      if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
      d = deadline_at(clock, abs);
    }
    if (!is_fake(t)) return join_real_on_fiber(on_fiber(Thread), t, ret, d);
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, d, false) : ESRCH;
  }
  return RINGLET_REAL(pthread_clockjoin_np)(t, ret, clock, abs);
}

RINGLET_HOOK int pthread_detach(pthread_t t) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_detach)(t);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  r->mu.lock();
  if (r->detached || r->joined) {
    r->mu.unlock();
    return EINVAL;
  }
  r->detached = true;
  const bool free_now = r->done;
  r->mu.unlock();
  if (free_now) free_rec(r);
  return 0;
}

RINGLET_HOOK void pthread_exit(void* value) {
  if (ThreadRec* r = current_rec()) exit_fiber_thread(r, value);
  Scheduler* s = Scheduler::current();
  if (s && g_main_exit_jb && s->running() == g_main_fiber && g_main_fiber) {
    // The main thread's pthread_exit: main ends, the process lives until the last thread.
    std::memset(&g_main_exit_exc, 0, sizeof g_main_exit_exc);
    g_main_exit_exc.exception_class = 0x52474c5400455849ull;
    g_main_exit_exc.exception_cleanup = &exit_not_rethrown;
    _Unwind_ForcedUnwind(&g_main_exit_exc, &main_exit_stop, nullptr);
    std::abort();
  }
  if (s && s->running()) {
    static const char msg[] =
        "ringlet patch: pthread_exit on a fiber that pthread_create did not start would end the "
        "scheduler's OS thread; aborting\n";
    (void)ringlet::detail::sys::write(2, msg, sizeof msg - 1);
    std::abort();
  }
  RINGLET_REAL(pthread_exit)(value);
  __builtin_unreachable();
}

RINGLET_HOOK int pthread_cancel(pthread_t t) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_cancel)(t);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  // Deferred cancellation, acted on at pthread_testcancel only (see patch/README.md).
  r->cancel.store(true, std::memory_order_release);
  return 0;
}

RINGLET_HOOK void pthread_testcancel(void) {
  if (ThreadRec* r = current_rec()) {
    if (r->cancel.load(std::memory_order_acquire)) exit_fiber_thread(r, PTHREAD_CANCELED);
    return;
  }
  RINGLET_REAL(pthread_testcancel)();
}

RINGLET_HOOK int pthread_kill(pthread_t t, int sig) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_kill)(t, sig);
  ThreadRec* r = rec_of(t);
  if (!r || r->done) return ESRCH;
  if (sig == 0) return 0;
  // A fiber has no signal state of its own: the signal goes to the OS thread carrying it.
  return RINGLET_REAL(pthread_kill)(r->carrier ? r->carrier : RINGLET_REAL(pthread_self)(), sig);
}

RINGLET_HOOK int pthread_setname_np(pthread_t t, const char* name) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_setname_np)(t, name);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  if (std::strlen(name) > 15) return ERANGE;
  if (Fiber* f = r->handle.native(); f && current_rec() == r) f->name = name;
  else if (f && Scheduler::current() == f->sched) f->name = name;
  return 0;
}

RINGLET_HOOK int pthread_getname_np(pthread_t t, char* buf, size_t len) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_getname_np)(t, buf, len);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  const std::string n = r->handle.name();
  if (n.size() + 1 > len) return ERANGE;
  std::memcpy(buf, n.c_str(), n.size() + 1);
  return 0;
}

RINGLET_HOOK int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_getattr_np)(t, attr);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  if (int e = pthread_attr_init(attr)) return e;
  if (Fiber* f = r->handle.native(); f && f->stack.lo)
    pthread_attr_setstack(attr, f->stack.lo, f->stack.size);
  if (r->detached) pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
  return 0;
}

// The scheduling and affinity calls name the OS thread that carries the fiber.
#define RINGLET_ON_CARRIER(fn, t, ...)                                          \
  do {                                                                          \
    if (is_fake(t)) {                                                           \
      ThreadRec* r = rec_of(t);                                                 \
      if (!r) return ESRCH;                                                     \
      t = r->carrier ? r->carrier : RINGLET_REAL(pthread_self)();               \
    }                                                                           \
    return RINGLET_REAL(fn)(t, __VA_ARGS__);                                    \
  } while (0)

RINGLET_HOOK int pthread_getschedparam(pthread_t t, int* policy, struct sched_param* p) {
  RINGLET_ON_CARRIER(pthread_getschedparam, t, policy, p);
}
RINGLET_HOOK int pthread_setschedparam(pthread_t t, int policy, const struct sched_param* p) {
  RINGLET_ON_CARRIER(pthread_setschedparam, t, policy, p);
}
RINGLET_HOOK int pthread_setschedprio(pthread_t t, int prio) { RINGLET_ON_CARRIER(pthread_setschedprio, t, prio); }
RINGLET_HOOK int pthread_getaffinity_np(pthread_t t, size_t n, cpu_set_t* set) {
  RINGLET_ON_CARRIER(pthread_getaffinity_np, t, n, set);
}
RINGLET_HOOK int pthread_setaffinity_np(pthread_t t, size_t n, const cpu_set_t* set) {
  RINGLET_ON_CARRIER(pthread_setaffinity_np, t, n, set);
}
RINGLET_HOOK int pthread_getcpuclockid(pthread_t t, clockid_t* clock) {
  RINGLET_ON_CARRIER(pthread_getcpuclockid, t, clock);
}

// A fiber thread's signal mask is its own bookkeeping, answered back to it, and not applied
// to the OS thread: that thread carries every fiber, main included, and a helper "thread"
// that blocks every signal (the usual way to leave them to main) must not block them for
// main too. Signals reach the carrier with main's mask.
static int fiber_sigmask(ThreadRec* r, int how, const sigset_t* set, sigset_t* old) noexcept {
  if (old) *old = r->sigmask;
  if (!set) return 0;
  switch (how) {
    case SIG_BLOCK:
      sigorset(&r->sigmask, &r->sigmask, set);
      break;
    case SIG_UNBLOCK:
      for (int sig = 1; sig < NSIG; ++sig)
        if (sigismember(set, sig) == 1) sigdelset(&r->sigmask, sig);
      break;
    case SIG_SETMASK:
      r->sigmask = *set;
      break;
    default:
      return EINVAL;
  }
  return 0;
}

RINGLET_HOOK int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) return fiber_sigmask(r, how, set, old);
  return RINGLET_REAL(pthread_sigmask)(how, set, old);
}

RINGLET_HOOK int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) {
    const int e = fiber_sigmask(r, how, set, old);
    if (e) {
      errno = e;
      return -1;
    }
    return 0;
  }
  return RINGLET_REAL(sigprocmask)(how, set, old);
}

RINGLET_HOOK int sched_yield(void) {
  if (Here h = on_fiber(Thread)) {
    count_on_fiber(Call::sched_yield);
    h.s->yield_nothrow();
    return 0;
  }
  return RINGLET_REAL(sched_yield)();
}

// --- once and keys -----------------------------------------------------------------------

// glibc's own encoding (0 new, bit 0 in progress, bit 1 done), so plain threads may keep
// using glibc's pthread_once on the same object: a fiber that finds another fiber inside the
// initialiser naps instead of sleeping on the futex (which would block the whole thread).
RINGLET_HOOK int pthread_once(pthread_once_t* once, void (*init)(void)) {
  auto* word = reinterpret_cast<std::atomic<int>*>(once);
  if (RINGLET_LIKELY(word->load(std::memory_order_acquire) & 2)) return 0;
  Here h = on_fiber(Thread);
  if (!h) return RINGLET_REAL(pthread_once)(once, init);
  for (std::int64_t nap = 20'000;; nap = std::min<std::int64_t>(nap * 2, 1'000'000)) {
    int v = word->load(std::memory_order_acquire);
    if (v & 2) return 0;
    if (!(v & 1)) {
      if (!word->compare_exchange_strong(v, 1, std::memory_order_acquire)) continue;
      try {
        init();
      } catch (...) {  // also pthread_exit's unwinding: the next caller runs init again
        word->store(0, std::memory_order_release);
        futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
        throw;
      }
      word->store(2, std::memory_order_release);
      futex(word, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr);
      return 0;
    }
    timed_sleep(h, deadline_after_ns(nap));
  }
}

RINGLET_HOOK int pthread_key_create(pthread_key_t* key, void (*dtor)(void*)) {
  const int e = RINGLET_REAL(pthread_key_create)(key, dtor);
  if (e == 0 && *key < kMaxKeys) {
    g_keys[*key].dtor.store(dtor, std::memory_order_release);
    g_keys[*key].seq.fetch_add(1, std::memory_order_acq_rel);
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

RINGLET_HOOK void* pthread_getspecific(pthread_key_t key) {
  ThreadRec* r = current_rec();
  if (RINGLET_LIKELY(!r)) return RINGLET_REAL(pthread_getspecific)(key);
  if (key >= r->nkeys) return nullptr;
  const KeyVal& kv = r->keys[key];
  return kv.seq == g_keys[key].seq.load(std::memory_order_acquire) ? kv.value : nullptr;
}

RINGLET_HOOK int pthread_setspecific(pthread_key_t key, const void* value) {
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

// --- mutexes -----------------------------------------------------------------------------

RINGLET_HOOK int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) {
  const int e = RINGLET_REAL(pthread_mutex_init)(m, attr);  // glibc works out __kind
  if (e != 0 || !sync_patched() || foreign(pm(m))) return e;
  const int kind = pm(m)->kind;
  std::memset(static_cast<void*>(m), 0, sizeof *m);
  pm(m)->kind = kind;
  return 0;
}

RINGLET_HOOK int pthread_mutex_destroy(pthread_mutex_t* m) {
  if (!sync_patched() || foreign(pm(m))) return RINGLET_REAL(pthread_mutex_destroy)(m);
  return pm(m)->state.load(std::memory_order_relaxed) != 0 ? EBUSY : 0;
}

RINGLET_HOOK int pthread_mutex_lock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (RINGLET_LIKELY(sync_patched() && p->kind == 0)) {
    if (RINGLET_LIKELY(try_take(p))) return 0;
    return lock_wait(p, Deadline::never());
  }
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_lock)(m);
  return mutex_lock(p, Deadline::never(), false);
}

RINGLET_HOOK int pthread_mutex_trylock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_trylock)(m);
  return mutex_lock(p, Deadline::never(), true);
}

RINGLET_HOOK int pthread_mutex_unlock(pthread_mutex_t* m) {
  PMutex* p = pm(m);
  if (RINGLET_LIKELY(sync_patched() && p->kind == 0)) {
    if (RINGLET_LIKELY(p->state.exchange(0, std::memory_order_release) != 2)) return 0;
    p->spin.lock();
    p->waiters.grant_one();
    p->spin.unlock();
    return 0;
  }
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_unlock)(m);
  return mutex_unlock(p);
}

RINGLET_HOOK int pthread_mutex_timedlock(pthread_mutex_t* m, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_timedlock)(m, abs);
  if (!valid_timespec(abs)) return EINVAL;
  return mutex_lock(p, deadline_at(CLOCK_REALTIME, abs), false);
}

RINGLET_HOOK int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock, const struct timespec* abs) {
  PMutex* p = pm(m);
  if (!sync_patched() || foreign(p)) return RINGLET_REAL(pthread_mutex_clocklock)(m, clock, abs);
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
  return mutex_lock(p, deadline_at(clock, abs), false);
}

// --- condition variables -----------------------------------------------------------------

RINGLET_HOOK int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* attr) {
  if (!sync_patched()) return RINGLET_REAL(pthread_cond_init)(c, attr);
  int shared = PTHREAD_PROCESS_PRIVATE;
  clockid_t clock = CLOCK_REALTIME;
  if (attr) {
    pthread_condattr_getpshared(attr, &shared);
    pthread_condattr_getclock(attr, &clock);
  }
  if (shared != PTHREAD_PROCESS_PRIVATE) return RINGLET_REAL(pthread_cond_init)(c, attr);
  std::memset(static_cast<void*>(c), 0, sizeof *c);
  pc(c)->flags = clock == CLOCK_MONOTONIC ? kCondMonotonic : 0;
  return 0;
}

RINGLET_HOOK int pthread_cond_destroy(pthread_cond_t* c) {
  if (!sync_patched() || (pc(c)->flags & kCondShared)) return RINGLET_REAL(pthread_cond_destroy)(c);
  return 0;
}

RINGLET_HOOK int pthread_cond_signal(pthread_cond_t* c) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_signal)(c);
  p->spin.lock();
  p->waiters.grant_one();
  p->spin.unlock();
  return 0;
}

RINGLET_HOOK int pthread_cond_broadcast(pthread_cond_t* c) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_broadcast)(c);
  p->spin.lock();
  p->waiters.grant_all();
  p->spin.unlock();
  return 0;
}

RINGLET_HOOK int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_wait)(c, m);
  return cond_wait(p, m, Deadline::never());
}

RINGLET_HOOK int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abs) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared)) return RINGLET_REAL(pthread_cond_timedwait)(c, m, abs);
  if (!valid_timespec(abs)) return EINVAL;
  return cond_wait(p, m, deadline_at((p->flags & kCondMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME, abs));
}

RINGLET_HOOK int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                        const struct timespec* abs) {
  PCond* p = pc(c);
  if (!sync_patched() || (p->flags & kCondShared))
    return RINGLET_REAL(pthread_cond_clockwait)(c, m, clock, abs);
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
  return cond_wait(p, m, deadline_at(clock, abs));
}

// --- rwlocks -----------------------------------------------------------------------------

RINGLET_HOOK int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t* attr) {
  const int e = RINGLET_REAL(pthread_rwlock_init)(l, attr);  // glibc records pshared and kind
  if (e != 0 || !sync_patched() || prw(l)->shared) return e;
  const std::uint32_t flags = prw(l)->flags;
  std::memset(static_cast<void*>(l), 0, sizeof *l);
  prw(l)->flags = flags;
  return 0;
}

#define RINGLET_RW_FOREIGN(l) (!sync_patched() || prw(l)->shared)

RINGLET_HOOK int pthread_rwlock_destroy(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_destroy)(l);
  return 0;
}
RINGLET_HOOK int pthread_rwlock_rdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_rdlock)(l);
  return rw_lock(prw(l), false, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_wrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_wrlock)(l);
  return rw_lock(prw(l), true, Deadline::never(), false);
}
RINGLET_HOOK int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_tryrdlock)(l);
  return rw_lock(prw(l), false, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_trywrlock)(l);
  return rw_lock(prw(l), true, Deadline::never(), true);
}
RINGLET_HOOK int pthread_rwlock_timedrdlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_timedrdlock)(l, abs);
  if (!valid_timespec(abs)) return EINVAL;
  return rw_lock(prw(l), false, deadline_at(CLOCK_REALTIME, abs), false);
}
RINGLET_HOOK int pthread_rwlock_timedwrlock(pthread_rwlock_t* l, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_timedwrlock)(l, abs);
  if (!valid_timespec(abs)) return EINVAL;
  return rw_lock(prw(l), true, deadline_at(CLOCK_REALTIME, abs), false);
}
RINGLET_HOOK int pthread_rwlock_clockrdlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_clockrdlock)(l, clock, abs);
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
  return rw_lock(prw(l), false, deadline_at(clock, abs), false);
}
RINGLET_HOOK int pthread_rwlock_clockwrlock(pthread_rwlock_t* l, clockid_t clock, const struct timespec* abs) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_clockwrlock)(l, clock, abs);
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) return EINVAL;
  return rw_lock(prw(l), true, deadline_at(clock, abs), false);
}
RINGLET_HOOK int pthread_rwlock_unlock(pthread_rwlock_t* l) {
  if (RINGLET_RW_FOREIGN(l)) return RINGLET_REAL(pthread_rwlock_unlock)(l);
  return rw_unlock(prw(l));
}

// --- barriers ----------------------------------------------------------------------------

RINGLET_HOOK int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* attr, unsigned count) {
  int shared = PTHREAD_PROCESS_PRIVATE;
  if (attr) pthread_barrierattr_getpshared(attr, &shared);
  if (!sync_patched() || shared != PTHREAD_PROCESS_PRIVATE)
    return RINGLET_REAL(pthread_barrier_init)(b, attr, count);
  if (count == 0) return EINVAL;
  auto* st = new (std::nothrow) BarrierState;
  if (!st) return ENOMEM;
  st->count = count;
  std::memset(static_cast<void*>(b), 0, sizeof *b);
  pb(b)->state = st;
  pb(b)->magic = kBarrierMagic;
  return 0;
}

RINGLET_HOOK int pthread_barrier_destroy(pthread_barrier_t* b) {
  if (pb(b)->magic != kBarrierMagic) return RINGLET_REAL(pthread_barrier_destroy)(b);
  BarrierState* st = pb(b)->state;
  st->spin.lock();
  const bool busy = st->arrived != 0;
  st->spin.unlock();
  if (busy) return EBUSY;
  pb(b)->magic = 0;
  delete st;
  return 0;
}

RINGLET_HOOK int pthread_barrier_wait(pthread_barrier_t* b) {
  if (pb(b)->magic != kBarrierMagic) return RINGLET_REAL(pthread_barrier_wait)(b);
  BarrierState* st = pb(b)->state;
  st->spin.lock();
  if (++st->arrived == st->count) {
    st->arrived = 0;
    st->waiters.grant_all();
    st->spin.unlock();
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  Waiter w;
  w.arm();
  st->waiters.push(&w);
  count_waited(Call::pthread_barrier_wait);
  while (!wait_on(st->spin, st->waiters, w, Deadline::never(), "pthread_barrier_wait (patched)")) {
    w.arm();
    st->waiters.push(&w);
  }
  st->spin.unlock();
  return 0;
}

// --- semaphores --------------------------------------------------------------------------

RINGLET_HOOK int sem_init(sem_t* s, int pshared, unsigned value) {
  if (!sync_patched() || pshared) return RINGLET_REAL(sem_init)(s, pshared, value);
  if (value > SEM_VALUE_MAX) {
    errno = EINVAL;
    return -1;
  }
  std::memset(static_cast<void*>(s), 0, sizeof *s);
  ps(s)->value.store(value, std::memory_order_relaxed);
  ps(s)->magic = kSemMagic;
  return 0;
}

RINGLET_HOOK int sem_destroy(sem_t* s) {
  if (!our_sem(ps(s))) return RINGLET_REAL(sem_destroy)(s);
  ps(s)->magic = 0;
  return 0;
}

RINGLET_HOOK int sem_post(sem_t* s) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_post)(s);
  std::uint32_t v = p->value.load(std::memory_order_relaxed);
  do {
    if (v >= SEM_VALUE_MAX) {
      errno = EOVERFLOW;
      return -1;
    }
  } while (!p->value.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed));
  if (p->thread_waiters.load(std::memory_order_acquire) > 0) futex_wake(&p->value, 1);
  // In a signal handler the interrupted code may hold the spinlock: take it only if free.
  // A fiber of this thread parked in sem_wait is woken by the signal anyway (EINTR path,
  // which takes the value first).
  if (in_signal_handler()) {
    if (!p->spin.try_lock()) return 0;
  } else {
    p->spin.lock();
  }
  p->fibers.grant_one();
  p->spin.unlock();
  return 0;
}

RINGLET_HOOK int sem_wait(sem_t* s) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_wait)(s);
  if (const int e = sem_wait_until(p, Deadline::never())) {
    errno = e;
    return -1;
  }
  return 0;
}

RINGLET_HOOK int sem_trywait(sem_t* s) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_trywait)(s);
  if (sem_take(p)) return 0;
  errno = EAGAIN;
  return -1;
}

RINGLET_HOOK int sem_timedwait(sem_t* s, const struct timespec* abs) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_timedwait)(s, abs);
  if (sem_take(p)) return 0;
  if (!valid_timespec(abs)) {
    errno = EINVAL;
    return -1;
  }
  if (const int e = sem_wait_until(p, deadline_at(CLOCK_REALTIME, abs))) {
    errno = e;
    return -1;
  }
  return 0;
}

RINGLET_HOOK int sem_clockwait(sem_t* s, clockid_t clock, const struct timespec* abs) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_clockwait)(s, clock, abs);
  if (sem_take(p)) return 0;
  if (!valid_timespec(abs) || (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) {
    errno = EINVAL;
    return -1;
  }
  if (const int e = sem_wait_until(p, deadline_at(clock, abs))) {
    errno = e;
    return -1;
  }
  return 0;
}

RINGLET_HOOK int sem_getvalue(sem_t* s, int* out) {
  PSem* p = ps(s);
  if (!our_sem(p)) return RINGLET_REAL(sem_getvalue)(s, out);
  *out = static_cast<int>(p->value.load(std::memory_order_relaxed));
  return 0;
}

// --- spinlocks ---------------------------------------------------------------------------

// glibc's representation; a fiber that finds one held lets the others run (the holder may
// be a fiber of this very thread, parked) instead of spinning its thread away.
RINGLET_HOOK int pthread_spin_lock(pthread_spinlock_t* l) {
  if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
  Here h = on_fiber(Thread);
  if (!h) return RINGLET_REAL(pthread_spin_lock)(l);
  for (int i = 0;; ++i) {
    if (RINGLET_REAL(pthread_spin_trylock)(l) == 0) return 0;
    if (i < 100) __builtin_ia32_pause();
    else if (i < 200) h.s->yield_nothrow();
    else timed_sleep(h, deadline_after_ns(50'000));
  }
}

// --- futex through syscall(2) ------------------------------------------------------------

// libstdc++ waits on futexes itself, through syscall(SYS_futex, ...): std::future and
// std::promise, std::atomic<T>::wait, std::latch, std::barrier, std::counting_semaphore.
// A fiber that waited there would block its whole thread, and with it the fiber that would
// wake it. So on a fiber, FUTEX_WAIT parks in a table of waiters keyed by address, and
// every FUTEX_WAKE made through syscall() wakes those first, then the kernel's.
namespace ringlet::patch::detail {
namespace {

struct FutexBucket {
  SpinLock spin;
  Waiter* head = nullptr;
};
FutexBucket g_futex[256];

FutexBucket& bucket_of(const void* addr) noexcept {
  const auto v = reinterpret_cast<std::uintptr_t>(addr);
  return g_futex[((v >> 2) ^ (v >> 10)) & 255u];
}

void unlink_waiter(FutexBucket& b, Waiter* w) noexcept {
  if (w->prev) w->prev->next = w->next;
  else b.head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->next = w->prev = nullptr;
  w->linked = false;
}

long futex_wait_fiber(Here h, std::uint32_t* addr, std::uint32_t val, Deadline d) noexcept {
  FutexBucket& b = bucket_of(addr);
  b.spin.lock();
  if (__atomic_load_n(addr, __ATOMIC_SEQ_CST) != val) {
    b.spin.unlock();
    errno = EAGAIN;
    return -1;
  }
  Waiter w;
  w.arm();
  w.slot = addr;
  w.next = b.head;
  if (b.head) b.head->prev = &w;
  b.head = &w;
  w.linked = true;
  h.s->primitive_wait_begin();
  b.spin.unlock();
  h.s->park(w.token, d, ringlet::detail::WaitInfo{"futex wait (patched)", nullptr}, /*interruptible=*/false);
  b.spin.lock();
  h.s->primitive_wait_end();
  if (w.linked) unlink_waiter(b, &w);
  b.spin.unlock();
  if (w.granted) return 0;
  errno = ETIMEDOUT;
  return -1;
}

int futex_wake_fibers(std::uint32_t* addr, int n) noexcept {
  FutexBucket& b = bucket_of(addr);
  int woken = 0;
  b.spin.lock();
  for (Waiter* w = b.head; w && woken < n;) {
    Waiter* next = w->next;
    if (w->slot == addr) {
      unlink_waiter(b, w);
      if (w->claim()) {
        w->granted = true;
        ++woken;
      }
    }
    w = next;
  }
  b.spin.unlock();
  return woken;
}

}  // namespace
}  // namespace ringlet::patch::detail

RINGLET_HOOK long syscall(long n, ...) {
  va_list ap;
  va_start(ap, n);
  long a[6];
  for (long& x : a) x = va_arg(ap, long);
  va_end(ap);
  if (RINGLET_LIKELY(n != SYS_futex) || !sync_patched())
    return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
  auto* addr = reinterpret_cast<std::uint32_t*>(a[0]);
  const int op = static_cast<int>(a[1]);
  const int cmd = op & FUTEX_CMD_MASK;
  if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
    const int want = static_cast<int>(a[2]);
    const int woken = futex_wake_fibers(addr, want);
    if (woken >= want) return woken;
    const long more = RINGLET_REAL(syscall)(n, a[0], a[1], want - woken, a[3], a[4], a[5]);
    return more < 0 ? (woken ? woken : more) : woken + more;
  }
  if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
    if (Here h = on_fiber(Thread)) {
      const auto* ts = reinterpret_cast<const timespec*>(a[3]);
      Deadline d = Deadline::never();
      if (ts) {
        if (!valid_timespec(ts)) {
          errno = EINVAL;
          return -1;
        }
        if (cmd == FUTEX_WAIT)
          d = deadline_after_ns(ts->tv_sec * 1'000'000'000LL + ts->tv_nsec);
        else
          d = deadline_at((op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, ts);
      }
      return futex_wait_fiber(h, addr, static_cast<std::uint32_t>(a[2]), d);
    }
  }
  return RINGLET_REAL(syscall)(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
