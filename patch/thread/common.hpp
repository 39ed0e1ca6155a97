// What the thread group's files share: the group switch, time and futex helpers, the one
// wait, and the mutex and fiber-thread layouts that more than one file reads.
//
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
// (a C caller has no way to see GreenletExit), but for the cancel of a fiber thread at a
// cancellation point (cancel.hpp); sem_wait answers EINTR to a signal, as the kernel's does.
#pragma once

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <time.h>
#include <unwind.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ringlet/fiber.hpp"
#include "ringlet/detail/wait.hpp"
#include "ringlet/fiber_local.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

using ringlet::Deadline;
using ringlet::detail::SpinLock;
using ringlet::detail::Waiter;
using ringlet::detail::WaitList;
using ringlet::detail::WakeReason;

// --- is the thread group on? -------------------------------------------------------------

// Decided on first use (a hook may run before our constructor) from RINGLET_PATCH, then
// fixed: 1 = fiber-aware objects, 0 = glibc's. -1 = not decided yet.
extern std::atomic<int> g_sync;

int decide_sync() noexcept;

inline bool sync_patched() noexcept {
  const int v = g_sync.load(std::memory_order_relaxed);
  return RINGLET_LIKELY(v > 0) || (v < 0 && decide_sync() > 0);
}

inline bool thread_group_on() noexcept {
  return (g_groups.load(std::memory_order_relaxed) & Thread) != 0 && sync_patched();
}

// --- time --------------------------------------------------------------------------------

bool valid_timespec(const timespec* ts) noexcept;

// An absolute time on `clock` as a monotonic Deadline.
Deadline deadline_at(clockid_t clock, const timespec* abs) noexcept;

// The absolute timeout of a *timed* or *clock* call: EINVAL if abs is null or not a valid
// timespec, or if clock is neither CLOCK_REALTIME nor CLOCK_MONOTONIC (the *timed* calls
// pass CLOCK_REALTIME, or a condvar's own clock); else 0, with out = deadline_at(clock, abs).
int abs_deadline(clockid_t clock, const timespec* abs, Deadline& out) noexcept;

// --- futexes for plain threads -----------------------------------------------------------

long futex(void* addr, int op, std::uint32_t val, const timespec* ts) noexcept;

// Sleep while *word == expected, until the monotonic deadline. Returns the errno
// (0, EAGAIN, ETIMEDOUT, EINTR).
int futex_wait_until(std::atomic<std::uint32_t>* word, std::uint32_t expected, Deadline d) noexcept;

void futex_wake(std::atomic<std::uint32_t>* word, int n) noexcept;

// --- waits: the runtime's one wait ------------------------------------------------------

// Park the caller on `w`, which it armed and pushed into `list` while holding `sp`. Unlocks
// while waiting, relocks, unlinks. Returns true if a notifier claimed it, false if the
// deadline passed first. Not interruptible by kill or the deadlock breaker, unless
// `cancel_point` (a cancellation point's wait: cond, join) and a cancel may end it
// (cancel.hpp: cancel_may_end_wait); then false may also mean the cancel ended it
// (cancel_acts_here).
bool wait_on(SpinLock& sp, WaitList& list, Waiter& w, Deadline d, const char* what,
             bool cancel_point = false) noexcept;

// The futex table of fibers (futex.cpp): park while *addr == val, until a futex wake made
// through syscall() for addr (or futex_wake_fibers) or d. 0, or -1 with errno EAGAIN
// (*addr had changed) or ETIMEDOUT. At `recheck`, if before d, the word is read again
// without leaving the table: changed, the wait ends (0); else it goes on until d.
long futex_wait_fiber(std::uint32_t* addr, std::uint32_t val, Deadline d, const char* what,
                      Deadline recheck = Deadline::never()) noexcept;
// Wake up to n fibers parked on addr; returns how many.
int futex_wake_fibers(const void* addr, int n) noexcept;

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

// mutex.cpp: lock (or, try_only, try) and unlock any non-foreign kind; cond.cpp uses them.
int mutex_lock(PMutex* p, Deadline d, bool try_only) noexcept;
int mutex_unlock(PMutex* p) noexcept;

// --- fiber threads -----------------------------------------------------------------------

constexpr std::uint64_t kThreadMagic = 0x52474c5448524421ull;  // "RGLTHRD!"
constexpr unsigned kMaxKeys = PTHREAD_KEYS_MAX;

struct KeyVal {
  std::uint64_t seq;
  void* value;
};

struct TlsBlock;

struct ThreadRec {
  std::uint64_t magic = kThreadMagic;
  void* (*start)(void*) = nullptr;
  void* arg = nullptr;
  void* result = nullptr;
  ringlet::BasicGreenlet handle;  // keeps the fiber's control block alive (set by the creator
                                  // after the spawn: the thread itself uses fiber_of())
  SpinLock mu;
  char name[16] = {};             // pthread_setname_np's, under mu (any carrier reads it)
  WaitList joiners;
  bool done = false;
  bool detached = false;
  bool joined = false;           // a join took the result (or one is in progress)
  // Cancellation (cancel.hpp). `cancel`: requested (pthread_cancel, any thread); the rest
  // belong to the thread itself (or to pthread_cancel on its scheduler).
  std::atomic<bool> cancel{false};
  bool cancel_disabled = false;  // PTHREAD_CANCEL_DISABLE
  bool cancel_async = false;     // PTHREAD_CANCEL_ASYNCHRONOUS (acts as deferred but for itself)
  bool exiting = false;          // pthread_exit or a cancel unwinds it: no more acting
  bool cancel_killed = false;    // pthread_cancel killed its fiber during the point
  unsigned cancel_depth = 0;     // inside a cancellation point's hook (nested ones too)
  unsigned cancel_off = 0;       // inside the patch's own uncancellable calls (CancelOff)
  // C cleanup handlers pushed without -fexceptions (__pthread_register_cancel): the newest
  // registered buffer; each links to the previous one (cancel.cpp).
  __pthread_unwind_buf_t* cleanup_top = nullptr;
  KeyVal* keys = nullptr;        // values of pthread keys for this thread, grown on demand
  unsigned nkeys = 0;
  jmp_buf exit_jb;
  _Unwind_Exception exit_exc;
  pthread_t carrier{};
  pid_t carrier_tid = 0;  // the kernel's id of the OS thread carrying it
  unsigned carrier_index = 0;  // which carrier (scheduler of the run) it lives on
  pid_t tid = 0;          // its own id (identity.cpp), 0 once it ended
  bool tls_wanted = false;   // it gets a TLS block of its own (tls.hpp)...
  TlsBlock* tls = nullptr;   // ...made and owned by the thread itself
  sigset_t sigmask;  // the thread's own signal mask (thread/signal_mask.cpp, signal_wait.cpp)
  // Sent to it (pthread_kill..., from any carrier) and not yet taken: bit sig-1.
  std::atomic<std::uint64_t> sig_pending{0};
  bool mask_counted = false;  // its mask counts in its carrier's arbiter (signal_wait.cpp)
  SignalCounts sig_counts;        // handlers run for it (its hooks' EINTR), see signal_route.cpp
  stack_t altstack{nullptr, SS_DISABLE, 0};  // its sigaltstack: bookkeeping (signal_route.cpp)
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
// Each fiber thread's record, in a fiber-local slot of its own (set by the thread itself as
// it starts, cleared when the record is freed under it).
extern ringlet::FiberLocal<ThreadRec*> g_self_rec;
inline ThreadRec* current_rec() noexcept {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s) || !s->running()) return nullptr;
  ThreadRec** r = g_self_rec.find();
  return r ? *r : nullptr;
}
// The main fiber of a whole-binary program (threads.cpp): its OS thread's pthread_t, and a
// record of main's own for cancellation and C cleanup handlers (not its identity).
extern Fiber* g_main_fiber;
extern pthread_t g_main_thread;
extern ThreadRec g_main_rec;
// The record whose cancellation state applies to the caller: a fiber thread's, main's on
// the main fiber, else null.
inline ThreadRec* cancel_rec() noexcept {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s)) return nullptr;
  Fiber* f = s->running();
  if (!f) return nullptr;
  if (ThreadRec** r = g_self_rec.find(); r && *r) return *r;
  return f == g_main_fiber ? &g_main_rec : nullptr;
}
// Whether any fiber thread was ever made in this process (threads.cpp).
bool fiber_threads_made() noexcept;
// pthread_getcpuclockid of a fiber thread (cpu_clock.cpp).
int fiber_thread_cpuclockid(ThreadRec* r, clockid_t* clock) noexcept;

// r's fiber: the running one if r is the caller (which may run on another carrier before
// its creator has stored r->handle), else the handle's.
inline Fiber* fiber_of(ThreadRec* r) noexcept {
  if (current_rec() == r) return Scheduler::current()->running();
  return r->handle.native();
}

inline bool is_fake(pthread_t t) noexcept { return (static_cast<std::uintptr_t>(t) & 1u) != 0; }

// --- signals and fiber threads ----------------------------------------------------------
// signal_wait.cpp keeps the carrier's real mask: blocked are the signals main and every fiber
// thread block (so that a signal sent to the process reaches a thread that accepts it), plus
// the sets of sigwait-family waits. Each fiber thread's mask is counted from its creation to
// its end; a change goes through set_thread_mask.
void thread_masks_begin() noexcept;  // at the first pthread_create: masks count from now on
void thread_mask_added(ThreadRec* r) noexcept;  // on r's carrier, as it starts
void thread_mask_removed(ThreadRec* r) noexcept;
void set_thread_mask(ThreadRec* r, const sigset_t& mask) noexcept;
// Once a fiber thread was made (and so only on the carrier): main's own mask blocks sig /
// how many fiber threads accept sig. thread_masks_on(): since the first one.
bool thread_masks_on() noexcept;
bool main_blocks(int sig) noexcept;
sigset_t main_mask_now() noexcept;  // on carrier 0: main's own mask
void main_signals_gone() noexcept;  // main's pthread_exit, on carrier 0: it accepts nothing now
unsigned threads_accepting(int sig) noexcept;
// signal_route.cpp: run, on the calling fiber thread, the handlers of the signals sent to it
// or left for it that its mask now accepts (each before this returns).
void deliver_pending(ThreadRec* r) noexcept;
// pthread_kill for a fiber thread: 0 or an errno value.
int signal_fiber_thread(ThreadRec* t, int sig) noexcept;
// pthread_exit on a fiber thread (threads.cpp): a forced unwind to thread_body, running the
// C++ destructors, the -fexceptions cleanups and the C cleanup handlers of its frames.
[[noreturn]] void exit_fiber_thread(ThreadRec* r, void* value);
// __pthread_unwind_next on a fiber thread: the unwind goes on past a C cleanup handler.
[[noreturn]] void continue_exit(ThreadRec* r);
// A C cleanup buffer's frame is reached by the unwind when a frame's CFA is not below this.
inline void*& cleanup_prev(__pthread_unwind_buf_t* b) noexcept { return b->__pad[0]; }
inline void*& cleanup_sp(__pthread_unwind_buf_t* b) noexcept { return b->__pad[1]; }

// once_keys.cpp: the thread's key destructors, as glibc: up to PTHREAD_DESTRUCTOR_ITERATIONS
// rounds.
void run_key_destructors(ThreadRec* r) noexcept;

}  // namespace ringlet::patch::detail
