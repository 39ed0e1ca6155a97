// Cancellation of fiber threads (cancel.cpp): where pthread_cancel acts.
//
// Every hooked call that POSIX makes a cancellation point and that can park wraps its work
// in RINGLET_CANCEL_POINT(...). On a fiber thread whose cancellation is enabled, a cancel
// already pending acts at entry; while the call runs, pthread_cancel kills the fiber through
// the runtime (Scheduler::kill), which ends a parked wait (Woke::Killed: the inner call
// returns, with EINTR or as it answers an interrupted wait); and back in the hook, if a wait
// of the call was ended by that kill (ringlet::detail::take_kill_wake), the cancel acts. A
// call that completed before the cancel came keeps its result, and the cancel acts at the
// next point. The kill is dropped at the end of the call (ringlet::detail::drop_kill), so it
// never ends a later wait that is no cancellation point.
//
// Acting is pthread_exit(PTHREAD_CANCELED): a forced unwind. It must not cross a noexcept
// frame (std::terminate), so it starts in cancel_point_on_scheduler's own frame, called by
// the exported hook (glibc's headers declare cancellation points without __THROW), after
// the noexcept inner call has returned. Nested points (a hook's work calling another hooked
// call) act only at the outermost one.
#pragma once

#include "common.hpp"

namespace ringlet::patch::detail {

// Cancellation acts now on r: requested, enabled, and r is not already exiting.
inline bool cancel_acts(const ThreadRec* r) noexcept {
  return r->cancel.load(std::memory_order_acquire) && !r->cancel_disabled && !r->exiting &&
         r->cancel_off == 0;
}
// The outermost cancellation point of r begins (false) or the cancel acts at entry (true).
bool cancel_enter(ThreadRec* r) noexcept;
// It ends: true if a wait of it was ended by the cancel, which then acts.
bool cancel_leave(ThreadRec* r) noexcept;
// pthread_exit(PTHREAD_CANCELED) on r, from the hook's outermost frame.
[[noreturn]] void act_cancel(ThreadRec* r);

// On a scheduler: out of line, so that a plain thread's call pays one thread-local load
// (RINGLET_CANCEL_POINT makes that test itself: no lambda is built on the fast path).
template <class F>
RINGLET_SLOW auto cancel_point_on_scheduler(F&& call) -> decltype(call()) {
  ThreadRec* r = cancel_rec();
  if (r == nullptr || r->cancel_depth != 0) return call();
  if (cancel_enter(r)) act_cancel(r);
  auto v = call();
  if (cancel_leave(r)) act_cancel(r);
  return v;
}

// For the waits of the thread group (wait_on): may a cancel end this wait of the caller? (a
// fiber thread (or main) inside a cancellation point, cancellation enabled)
inline bool cancel_may_end_wait() noexcept {
  ThreadRec* r = cancel_rec();
  return r && r->cancel_depth != 0 && !r->cancel_disabled && !r->exiting && r->cancel_off == 0;
}
// After such a wait ended without its grant: does the caller's cancel act now?
inline bool cancel_acts_here() noexcept {
  ThreadRec* r = cancel_rec();
  return r && r->cancel_depth != 0 && cancel_acts(r);
}

// The patch's own calls of hooked cancellation points from code that cannot be unwound
// (noexcept frames: the stdio cookie functions under glibc's stdio, messages): no cancel acts
// or ends a wait inside the scope; one that comes meanwhile stays pending for the next point.
class CancelOff {
 public:
  CancelOff() noexcept : r_(cancel_rec()) {
    if (r_) ++r_->cancel_off;
  }
  ~CancelOff() {
    if (r_) --r_->cancel_off;
  }
  CancelOff(const CancelOff&) = delete;
  CancelOff& operator=(const CancelOff&) = delete;

 private:
  ThreadRec* r_;
};

}  // namespace ringlet::patch::detail

// The body of a cancellation point's hook: `return RINGLET_CANCEL_POINT(inner(args));`,
// inner being noexcept.
#define RINGLET_CANCEL_POINT(...)                                                       \
  (RINGLET_LIKELY(::ringlet::detail::Scheduler::current() == nullptr)                   \
       ? (__VA_ARGS__)                                                                  \
       : ::ringlet::patch::detail::cancel_point_on_scheduler([&]() noexcept { return __VA_ARGS__; }))
