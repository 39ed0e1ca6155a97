// Cancellation of fiber threads: pthread_cancel, pthread_testcancel, the cancel state and
// type, the cancellation points' check (cancel.hpp), and the C cleanup handlers of
// pthread_cleanup_push without -fexceptions (__pthread_register_cancel and its kin).
//
// The C cleanup handlers: glibc chains the buffers of pthread_cleanup_push in the thread's
// descriptor (THREAD_SELF->cleanup_jmp_buf), and its unwinder's stop function (nptl/unwind.c)
// longjmps into each buffer whose frame the unwind reaches; the code there runs the routine
// and calls __pthread_unwind_next, which unwinds on. A fiber thread's descriptor is its own
// TLS block's, or the carrier's with RINGLET_THREAD_TLS=shared (where every fiber would
// write one chain), and its pthread_exit is ours (threads.cpp), so the chain is kept here, in
// the ThreadRec, and exit_stop walks it as glibc's unwind_stop does. The program calls these
// functions through its PLT, so the preload's definitions are the ones it reaches.
#include <errno.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "ringlet/fiber.hpp"
#include "internal/sys.hpp"
#include "cancel.hpp"
#include "common.hpp"

namespace ringlet::patch::detail {

bool cancel_enter(ThreadRec* r) noexcept {
  if (cancel_acts(r)) return true;
  ++r->cancel_depth;
  (void)ringlet::detail::take_kill_wake();  // a kill that ended a wait before this call
  return false;
}

bool cancel_leave(ThreadRec* r) noexcept {
  --r->cancel_depth;
  const bool woke = ringlet::detail::take_kill_wake();
  const bool acts = woke && cancel_acts(r);
  // Ours, or another kill (a ringlet program's deadlock breaker) that ended this wait: C code
  // cannot see GreenletExit, and a kill left pending would end every later wait at once.
  if (r->cancel_killed || (woke && !acts)) {
    r->cancel_killed = false;
    ringlet::detail::drop_kill();
  }
  return acts;
}

void act_cancel(ThreadRec* r) {
  r->cancel_killed = false;
  ringlet::detail::drop_kill();
  exit_fiber_thread(r, PTHREAD_CANCELED);
}

namespace {

// Kill r's fiber on its own scheduler (runtime: Scheduler::kill) so that its parked wait at
// a cancellation point ends. First the reactor is asked for what the kernel has completed
// (Reactor::poll, as the loop does): natively a thread whose read a write woke before the
// cancel came returns the data, and here its completion may not have been reaped yet. A
// fiber so woken is no longer parked: the kill only stays pending, and the call returns its
// result (cancel_leave drops the kill; the cancel acts at the next point).
void kill_on_owner(Scheduler* owner, Fiber* f, ThreadRec* r) noexcept {
  try {
    owner->reactor().poll();
    owner->kill(f);
  } catch (...) {
    return;  // the cancel acts at the next point
  }
  r->cancel_killed = true;
}

void strike(ThreadRec* r) noexcept {
  Fiber* f = r == &g_main_rec ? g_main_fiber : fiber_of(r);
  if (!f || (r != &g_main_rec && f->finished.load(std::memory_order_acquire))) return;
  Scheduler* owner = ringlet::detail::st(f).sched;
  if (Scheduler::current() == owner) {
    if (r->cancel_depth != 0) kill_on_owner(owner, f, r);  // parked (or about to) in a point
    return;
  }
  // Another OS thread: the owner's loop looks and does it (the handle keeps the fiber; r
  // lives as long as the fiber has not finished).
  try {
    owner->post_call([owner, g = r->handle, r, main_fiber = f] {
      Fiber* f = r == &g_main_rec ? main_fiber : g.native();
      if (!f || (r != &g_main_rec && f->finished.load(std::memory_order_acquire))) return;
      if (r->cancel_depth == 0 || !cancel_acts(r)) return;
      kill_on_owner(owner, f, r);
    });
  } catch (...) {
    // No memory for the call: the cancel acts at the thread's next cancellation point.
  }
}

void say_stdio_once() noexcept {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  static const char msg[] =
      "ringlet patch: pthread_cancel of a thread inside stdio on a pipe, socket or terminal "
      "FILE: stdio on the patch's FILEs is no cancellation point; the cancel acts at the "
      "thread's next one\n";
  (void)ringlet::detail::sys::write(2, msg, sizeof msg - 1);
}

void say_async_once() noexcept {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  static const char msg[] =
      "ringlet patch: PTHREAD_CANCEL_ASYNCHRONOUS on a fiber thread: a cancel from another "
      "thread acts at its next cancellation point (or where it waits in one), as deferred\n";
  (void)ringlet::detail::sys::write(2, msg, sizeof msg - 1);
}

}  // namespace

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK int pthread_cancel(pthread_t t) {
  ThreadRec* r;
  if (!is_fake(t)) {
    // The OS thread whose main is the main fiber: main is cancelled, not the thread that
    // carries every fiber.
    if (!g_main_fiber || !RINGLET_REAL(pthread_equal)(t, g_main_thread))
      return RINGLET_REAL(pthread_cancel)(t);
    if (g_main_rec.exiting) return 0;  // main has ended; its OS thread carries the others
    r = &g_main_rec;
  } else {
    r = rec_of(t);
    if (!r || r->done) return r ? 0 : ESRCH;
  }
  r->cancel.store(true, std::memory_order_release);
  if (r->cancel_off != 0 && !r->cancel_disabled && !r->exiting) say_stdio_once();
  if (!cancel_acts(r)) return 0;  // disabled: it acts once enabled, at the next point
  if (r == cancel_rec()) {
    if (r->cancel_async) act_cancel(r);  // asynchronous: at once, as glibc does for itself
    return 0;
  }
  strike(r);  // if it waits in a cancellation point
  return 0;
}

RINGLET_HOOK void pthread_testcancel(void) {
  if (ThreadRec* r = cancel_rec()) {
    if (cancel_acts(r)) act_cancel(r);
    return;
  }
  RINGLET_REAL(pthread_testcancel)();
}

RINGLET_HOOK int pthread_setcancelstate(int state, int* old) {
  ThreadRec* r = cancel_rec();
  if (!r) return RINGLET_REAL(pthread_setcancelstate)(state, old);
  if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
  if (old) *old = r->cancel_disabled ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
  r->cancel_disabled = state == PTHREAD_CANCEL_DISABLE;
  if (r->cancel_async && cancel_acts(r)) act_cancel(r);  // glibc: asynchronous acts at once
  return 0;
}

RINGLET_HOOK int pthread_setcanceltype(int type, int* old) {
  ThreadRec* r = cancel_rec();
  if (!r) return RINGLET_REAL(pthread_setcanceltype)(type, old);
  if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
  if (old) *old = r->cancel_async ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
  r->cancel_async = type == PTHREAD_CANCEL_ASYNCHRONOUS;
  if (r->cancel_async) {
    if (cancel_acts(r)) act_cancel(r);
    say_async_once();
  }
  return 0;
}

// --- C cleanup handlers without -fexceptions --------------------------------------------

// The caller's frame made the buffer (pthread_cleanup_push's sigsetjmp just before): the
// CFA of this call is the caller's stack pointer, which the unwind compares as glibc
// compares the buffer's saved one.
RINGLET_HOOK __attribute__((noinline)) void __pthread_register_cancel(__pthread_unwind_buf_t* buf) {
  if (ThreadRec* r = cancel_rec()) {
    cleanup_prev(buf) = r->cleanup_top;
    cleanup_sp(buf) = __builtin_dwarf_cfa();
    r->cleanup_top = buf;
    return;
  }
  RINGLET_REAL(__pthread_register_cancel)(buf);
}

RINGLET_HOOK void __pthread_unregister_cancel(__pthread_unwind_buf_t* buf) {
  if (ThreadRec* r = cancel_rec()) {
    r->cleanup_top = static_cast<__pthread_unwind_buf_t*>(cleanup_prev(buf));
    return;
  }
  RINGLET_REAL(__pthread_unregister_cancel)(buf);
}

// pthread_cleanup_push_defer_np: also the deferred type for the region, the old one kept in
// the buffer.
RINGLET_HOOK __attribute__((noinline)) void __pthread_register_cancel_defer(__pthread_unwind_buf_t* buf) {
  if (ThreadRec* r = cancel_rec()) {
    cleanup_prev(buf) = r->cleanup_top;
    cleanup_sp(buf) = __builtin_dwarf_cfa();
    buf->__pad[2] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(r->cancel_async));
    r->cancel_async = false;
    r->cleanup_top = buf;
    return;
  }
  RINGLET_REAL(__pthread_register_cancel_defer)(buf);
}

RINGLET_HOOK void __pthread_unregister_cancel_restore(__pthread_unwind_buf_t* buf) {
  if (ThreadRec* r = cancel_rec()) {
    r->cleanup_top = static_cast<__pthread_unwind_buf_t*>(cleanup_prev(buf));
    if (buf->__pad[2]) pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, nullptr);
    return;
  }
  RINGLET_REAL(__pthread_unregister_cancel_restore)(buf);
}

// Called by the code of pthread_cleanup_push once its routine ran during an unwind.
RINGLET_HOOK void __pthread_unwind_next(__pthread_unwind_buf_t* buf) {
  if (ThreadRec* r = cancel_rec()) continue_exit(r);
  RINGLET_REAL(__pthread_unwind_next)(buf);
  __builtin_unreachable();
}
