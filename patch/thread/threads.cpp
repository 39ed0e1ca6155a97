// Fiber threads: create, join, detach, exit, self/equal (cancel: cancel.cpp; kill, names,
// attributes, scheduling and affinity, the CPU clock's id, sched_yield: attributes.cpp).
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <time.h>
#include <unwind.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "ringlet/fiber.hpp"
#include "internal/native_thread.hpp"
#include "internal/sys.hpp"
#include "ringlet/async_result.hpp"
#include "ringlet/time.hpp"
#include "cancel.hpp"
#include "common.hpp"
#include "identity.hpp"
#include "placement.hpp"
#include "tls.hpp"

namespace ringlet::patch::detail {

ringlet::FiberLocal<ThreadRec*> g_self_rec;

// The main fiber of a whole-binary program (start.cpp sets it up): where its pthread_exit
// unwinds to, and its record for cancellation and C cleanup handlers only (main keeps its
// own pthread_self and thread id: g_self_rec is not set for it).
jmp_buf* g_main_exit_jb = nullptr;
Fiber* g_main_fiber = nullptr;
void* g_main_exit_body = nullptr;
pthread_t g_main_thread{};
ThreadRec g_main_rec;

namespace {

// Fiber threads that have not finished; in a forked child whose main is gone (fork was
// called on a fiber thread), the last one to finish ends the process with exit(0), as the
// last thread's end does natively.
std::atomic<long> g_threads_alive{0};
std::atomic<bool> g_main_gone{false};

void free_rec(ThreadRec* r) noexcept {
  r->magic = 0;
  release_thread_id(r);
  if (ThreadRec** self = g_self_rec.find(); self && *self == r) *self = nullptr;  // freed by itself (detached)
  std::free(r->keys);
  delete r;
}

__attribute__((noinline)) void finish_thread(ThreadRec* r, void* result, std::uint64_t seq,
                                             ringlet::Clock::time_point made) noexcept {
  // glibc's order: thread_local destructors, then pthread key destructors, on the thread's
  // own thread-locals; then the thread leaves its block.
  if (r->tls) tls_run_destructors();
  run_key_destructors(r);
  if (r->tls) {
    tls_block_leave(r->tls);
    r->tls = nullptr;
  }
  release_thread_id(r);
  placement_ended(r->carrier_index, seq, made);  // before a joiner goes on
  thread_mask_removed(r);  // and what was sent to it and not taken is dropped, as natively
  r->mu.lock();
  r->result = result;
  r->done = true;
  r->joiners.grant_all();
  const bool free_now = r->detached;
  r->mu.unlock();
  if (free_now) free_rec(r);
  if (g_threads_alive.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      g_main_gone.load(std::memory_order_relaxed))
    std::exit(0);
}

std::atomic<std::uint64_t> g_thread_seq{0};


// pthread_atfork's child handler: fork keeps its caller only.
void forked_child() noexcept {
  Scheduler* s = Scheduler::current();
  if (!s || !s->running()) return;
  ThreadRec* me = current_rec();
  s->forget_other_fibers();
  forget_thread_ids_after_fork(me);
  forget_file_locks_after_fork();
  if (me) tls_after_fork_child(me->tls);
  // The child's run has one carrier (the runtime made the caller's scheduler the only core,
  // number 0): the caller is the only thread on it.
  placement_after_fork(me != nullptr);
  if (me) me->carrier_index = 0;
  g_threads_alive.store(me ? 1 : 0, std::memory_order_relaxed);
  if (me) g_main_gone.store(true, std::memory_order_relaxed);
}

_Unwind_Reason_Code exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                              _Unwind_Exception*, _Unwind_Context* ctx, void* param);

// The body of every fiber thread. Not inlined: pthread_exit's unwinding stops at its frame.
// `seq` is the thread's number; its life, for the placement rule, counts from here: neither
// the making of its stack nor a wait for its carrier is its own.
__attribute__((noinline)) void thread_body(ThreadRec* r, std::uint64_t seq) noexcept {
  const auto made = ringlet::Clock::now();
  g_self_rec.get() = r;  // a few bytes: out of memory here ends the process (noexcept)
  r->carrier = RINGLET_REAL(pthread_self)();
  r->carrier_tid = static_cast<pid_t>(RINGLET_REAL(syscall)(SYS_gettid));
  thread_mask_added(r);  // on its own carrier, whose real mask now lets through what r accepts
  Scheduler::current()->enable_cpu_accounting();  // its carrier charges it its run time
  if (r->tls_wanted) {
    // The thread's TLS block lives in this frame, which outlives everything the thread runs.
    if ((r->tls = tls_block_create(__builtin_alloca(tls_block_bytes())))) tls_block_enter(r->tls);
    else tls_out_of_memory();  // this thread shares its OS thread's thread-locals
  }
  void* result;
  if (setjmp(r->exit_jb) == 0) {
    result = r->start(r->arg);
  } else {
    result = r->result;  // pthread_exit's value; the frames above were unwound
  }
  finish_thread(r, result, seq, made);
}

// The stop function of a fiber thread's unwind (pthread_exit, cancellation), as glibc's
// unwind_stop (nptl/unwind.c): before the unwind leaves the frame that registered the
// newest C cleanup buffer (its CFA, the stack pointer of the frame above, is not below the
// buffer's), longjmp into that buffer, whose code runs the routine and calls
// __pthread_unwind_next (continue_exit). At thread_body, back to it.
_Unwind_Reason_Code exit_stop(int, _Unwind_Action actions, _Unwind_Exception_Class,
                              _Unwind_Exception*, _Unwind_Context* ctx, void* param) {
  auto* r = static_cast<ThreadRec*>(param);
  const bool main = r == &g_main_rec;
  const void* body = main ? g_main_exit_body : reinterpret_cast<void*>(&thread_body);
  const bool end = (actions & _UA_END_OF_STACK) ||
                   _Unwind_GetRegionStart(ctx) == reinterpret_cast<_Unwind_Ptr>(body);
  if (__pthread_unwind_buf_t* b = r->cleanup_top) {
    if (end || !(_Unwind_GetCFA(ctx) < reinterpret_cast<_Unwind_Word>(cleanup_sp(b)))) {
      r->cleanup_top = static_cast<__pthread_unwind_buf_t*>(cleanup_prev(b));
      longjmp(reinterpret_cast<struct __jmp_buf_tag*>(b->__cancel_jmp_buf), 1);
    }
  }
  if (end) longjmp(main ? *g_main_exit_jb : r->exit_jb, 1);
  return _URC_NO_REASON;
}

void exit_not_rethrown(_Unwind_Reason_Code, _Unwind_Exception*) {
  static const char msg[] =
      "ringlet patch: pthread_exit on a fiber thread was caught and not rethrown (a catch(...) "
      "must rethrow abi::__forced_unwind)\n";
  (void)ringlet::detail::sys::write(2, msg, sizeof msg - 1);
  std::abort();
}

}  // namespace

[[noreturn]] void continue_exit(ThreadRec* r) {
  std::memset(&r->exit_exc, 0, sizeof r->exit_exc);
  r->exit_exc.exception_class = 0x52474c5400455849ull;  // "RGLT\0EXI"
  r->exit_exc.exception_cleanup = &exit_not_rethrown;
  _Unwind_ForcedUnwind(&r->exit_exc, &exit_stop, r);
  std::abort();  // the unwinder found no way back to thread_body
}

[[noreturn]] void exit_fiber_thread(ThreadRec* r, void* value) {
  r->result = value;
  r->exiting = true;  // cancellation points no longer act (glibc's EXITING bit)
  continue_exit(r);
}

namespace {

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

// A thread placed on another carrier is made by that carrier's loop (its stack comes from that
// carrier's pool), and its creator waits for the answer: a carrier that cannot map the stack
// makes pthread_create fail with EAGAIN, as natively, where ringlet::spawn_on would answer
// at once and leave a thread that never runs and a join that never returns. The target's loop
// answers at its next switch; a thread there that computes without a call holds it, so the
// creator waits kAnswerBound at most: then, unless the target has begun, it takes the call back
// and makes the thread on its own carrier (false: the caller does), as natively pthread_create
// returns at once. The bound is far above a sleeping carrier's wake-up (tens of us), so that
// an OS thread the kernel runs a few ms late does not move threads it would have taken.
// Throws when the target could not make the thread.
constexpr auto kAnswerBound = std::chrono::milliseconds(20);

struct CarrierSpawn {  // the creator's question, shared with the posted call that answers it
  enum : int { kPending, kTaken, kWithdrawn };
  std::atomic<int> state{kPending};
  ringlet::detail::SpinLock lk;
  ringlet::detail::WaitList list;
  bool done = false;  // under lk
  bool made = false;
};

bool spawn_on_carrier(unsigned carrier, const ringlet::SpawnOptions& o, ThreadRec* r, std::uint64_t seq) {
  using namespace ringlet::detail;
  Scheduler* target = Scheduler::current()->group()->scheds[carrier];
  auto q = std::make_shared<CarrierSpawn>();
  Waiter w;
  q->lk.lock();
  w.arm();
  q->list.push(&w);
  try {
    target->post_call([q, o, r, seq] {
      int pending = CarrierSpawn::kPending;
      if (!q->state.compare_exchange_strong(pending, CarrierSpawn::kTaken, std::memory_order_acq_rel))
        return;  // withdrawn: the creator made the thread itself
      bool ok = false;
      try {
        r->handle = ringlet::spawn(o, [r, seq]() noexcept { thread_body(r, seq); });
        ok = true;
      } catch (...) {
        // no stack (or no memory for the fiber) on this carrier
      }
      std::lock_guard<SpinLock> g(q->lk);
      q->made = ok;
      q->done = true;
      q->list.grant_one();
    });
  } catch (...) {
    q->list.remove(&w);
    q->lk.unlock();
    throw;
  }
  WaitSpec spec;
  spec.what = "pthread_create of a thread on another carrier (patched)";
  spec.interruptible = false;
  spec.remote = true;  // another carrier answers
  spec.deadline = ringlet::Deadline::after(kAnswerBound);
  for (;;) {
    const Woke k = wait_in(q->lk, q->list, w, spec);  // returns with the lock held, w unlinked
    if (k == Woke::Notified || q->done) break;
    int pending = CarrierSpawn::kPending;
    if (k == Woke::Deadline &&
        q->state.compare_exchange_strong(pending, CarrierSpawn::kWithdrawn, std::memory_order_acq_rel)) {
      q->lk.unlock();
      return false;  // the target never began: the caller makes it here
    }
    spec.deadline = ringlet::Deadline::never();  // the target has begun: it answers soon
    w.arm();
    q->list.push(&w);
  }
  q->lk.unlock();
  if (!q->made) throw std::bad_alloc();
  return true;
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
  r->tls_wanted = tls_per_thread();
  __libc_single_threaded = 0;  // as glibc's pthread_create says: the process has threads now
  // Its CPU clock (cpu_clock.cpp) counts from its start.
  Scheduler::current()->enable_cpu_accounting();
  if (!assign_thread_id(r)) {
    free_rec(r);
    return EAGAIN;  // what pthread_create says when it cannot allocate the thread
  }
  // A new thread starts with its creator's mask (main's: through the hook, which knows it).
  if (ThreadRec* parent = current_rec()) r->sigmask = parent->sigmask;
  else pthread_sigmask(SIG_BLOCK, nullptr, &r->sigmask);
  thread_masks_begin();
  try {
    ringlet::SpawnOptions o;
    o.stack_size = stack;
    const std::uint64_t seq = g_thread_seq.fetch_add(1, std::memory_order_relaxed) + 1;
    o.name = "thread-" + std::to_string(seq);
    unsigned carrier = place_thread(!g_main_gone.load(std::memory_order_relaxed));  // counted
    r->carrier_index = carrier;
    try {
      bool made_there = false;
      if (carrier != ringlet::this_core()) {
        made_there = spawn_on_carrier(carrier, o, r, seq);
        if (!made_there) {  // its carrier did not answer in time: made here, counted here
          const unsigned here = ringlet::this_core();
          placement_moved(carrier, here);
          r->carrier_index = carrier = here;
        }
      }
      if (!made_there) r->handle = ringlet::spawn(o, [r, seq]() noexcept { thread_body(r, seq); });
    } catch (...) {
      placement_undo(carrier);
      throw;
    }
    placement_made(seq);
  } catch (...) {
    thread_mask_removed(r);
    free_rec(r);
    return EAGAIN;  // no stack could be mapped: what pthread_create says
  }
  *out = handle_of(r);
  g_threads_alive.fetch_add(1, std::memory_order_relaxed);
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &forked_child); });
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
    if (!wait_on(r->mu, r->joiners, w, d, "pthread_join (patched)", /*cancel_point=*/true) &&
        !r->done) {
      if (!d.is_never() && d.passed()) {
        r->joined = false;
        r->mu.unlock();
        return ETIMEDOUT;
      }
      if (cancel_acts_here()) {  // the joiner's cancel: the target stays joinable
        r->joined = false;
        r->mu.unlock();
        return EINTR;
      }
    }
  }
  void* result = r->result;
  r->mu.unlock();
  if (ret) *ret = result;
  free_rec(r);
  return 0;
}

// A fiber joining a real thread: a joiner thread of its own makes the real, blocking join
// while the fiber waits for it, uninterruptibly (the join writes *ret; a kill stays pending).
// If no thread can be made, the join blocks this carrier, as it would unpatched.
int join_real_on_fiber(pthread_t t, void** ret, Deadline d) noexcept {
  timespec abs{};
  if (!d.is_never()) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d.time().time_since_epoch()).count();
    abs = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }
  const bool timed = !d.is_never();
  try {
    ringlet::AsyncResult<int> done;
    ringlet::detail::NativeThread([done, t, ret, timed, abs]() mutable {
      done.set(timed ? RINGLET_REAL(pthread_clockjoin_np)(t, ret, CLOCK_MONOTONIC, &abs)
                     : RINGLET_REAL(pthread_join)(t, ret));
    }).detach();
    done.wait_uninterruptible("pthread_join of a plain thread (patched)");
    return done.get();
  } catch (...) {
    return timed ? RINGLET_REAL(pthread_clockjoin_np)(t, ret, CLOCK_MONOTONIC, &abs)
                 : RINGLET_REAL(pthread_join)(t, ret);
  }
}

}  // namespace

// --- start.cpp's side of pthread_exit on the main fiber ----------------------------------

void set_main_exit(void* jb, void* body) noexcept {
  g_main_exit_jb = static_cast<jmp_buf*>(jb);
  g_main_exit_body = body;
  Scheduler* s = Scheduler::current();
  g_main_fiber = s ? s->running() : nullptr;
  g_main_thread = RINGLET_REAL(pthread_self)();
  g_main_rec.magic = 0;  // never a handle: only cancel_rec() finds it
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Thread;

// --- threads -----------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// AddressSanitizer and ThreadSanitizer intercept pthread_create ahead of us and run the start
// routine through their own thread set-up, which needs a new OS thread (its state lives in
// the new thread's static TLS; TSan's creator also waits for the new thread to start): in
// sanitizer builds threads stay real (the synchronisation objects are still ours, and
// exercised by real threads and by fibers).
constexpr bool kThreadsBecomeFibers = false;
#else
constexpr bool kThreadsBecomeFibers = true;
#endif

RINGLET_HOOK int pthread_create(pthread_t* out, const pthread_attr_t* attr, void* (*fn)(void*), void* arg) {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s) || !s->running() || !kThreadsBecomeFibers || !thread_group_on()) {
    count_passed(Call::pthread_create);
    return RINGLET_REAL(pthread_create)(out, attr, fn, arg);
  }
  return create_fiber_thread(out, attr, fn, arg);
}

// TSan's set-up of a new thread calls this before the thread has a TSan state: where threads
// stay real (sanitizer builds), there is no fiber thread to ask for, and nothing instrumented.
RINGLET_HOOK RINGLET_NO_TSAN pthread_t pthread_self(void) {
  if constexpr (kThreadsBecomeFibers) {
    if (ThreadRec* r = current_rec(); RINGLET_UNLIKELY(r != nullptr)) return handle_of(r);
  }
  return RINGLET_REAL(pthread_self)();
}

RINGLET_HOOK int pthread_equal(pthread_t a, pthread_t b) { return a == b; }

static int cancel_point_pthread_join(pthread_t t, void** ret) noexcept {
  if (is_fake(t)) {
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, Deadline::never(), false) : ESRCH;
  }
  if (Here h = on_fiber(Thread)) return join_real_on_fiber(t, ret, Deadline::never());
  return RINGLET_REAL(pthread_join)(t, ret);
}

RINGLET_HOOK int pthread_join(pthread_t t, void** ret) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_join(t, ret));
}

RINGLET_HOOK int pthread_tryjoin_np(pthread_t t, void** ret) {
  if (is_fake(t)) {
    ThreadRec* r = rec_of(t);
    return r ? join_fiber_thread(r, ret, Deadline::never(), true) : ESRCH;
  }
  return RINGLET_REAL(pthread_tryjoin_np)(t, ret);
}

// The timed joins of a fiber thread, or of a real thread from a fiber; a null abs waits
// for ever.
static int join_until(pthread_t t, void** ret, clockid_t clock, const struct timespec* abs) noexcept {
  Deadline d = Deadline::never();
  if (abs) {
    if (const int e = abs_deadline(clock, abs, d)) return e;
  }
  if (!is_fake(t)) return join_real_on_fiber(t, ret, d);
  ThreadRec* r = rec_of(t);
  return r ? join_fiber_thread(r, ret, d, false) : ESRCH;
}

static int cancel_point_pthread_timedjoin_np(pthread_t t, void** ret, const struct timespec* abs) noexcept {
  if (is_fake(t) || on_fiber(Thread)) return join_until(t, ret, CLOCK_REALTIME, abs);
  return RINGLET_REAL(pthread_timedjoin_np)(t, ret, abs);
}

RINGLET_HOOK int pthread_timedjoin_np(pthread_t t, void** ret, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_timedjoin_np(t, ret, abs));
}

static int cancel_point_pthread_clockjoin_np(pthread_t t, void** ret, clockid_t clock, const struct timespec* abs) noexcept {
  if (is_fake(t) || on_fiber(Thread)) return join_until(t, ret, clock, abs);
  return RINGLET_REAL(pthread_clockjoin_np)(t, ret, clock, abs);
}

RINGLET_HOOK int pthread_clockjoin_np(pthread_t t, void** ret, clockid_t clock, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_pthread_clockjoin_np(t, ret, clock, abs));
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
    main_signals_gone();  // a signal sent to the process goes to a thread that remains
    exit_fiber_thread(&g_main_rec, value);
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

// pthread_cancel, pthread_testcancel: cancel.cpp.

namespace ringlet::patch::detail {
bool fiber_threads_made() noexcept { return g_thread_seq.load(std::memory_order_relaxed) != 0; }
}  // namespace ringlet::patch::detail
