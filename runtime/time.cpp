#include "ringlet/time.hpp"

#include <thread>

#include "internal/scheduler.hpp"
#include "ringlet/detail/wait.hpp"

namespace ringlet {

Clock::duration Deadline::remaining() const noexcept {
  if (is_never()) return Clock::duration::max();
  auto left = at_ - Clock::now();
  return left > Clock::duration::zero() ? left : Clock::duration::zero();
}

void sleep_until(Deadline d) {
  using namespace detail;
  Scheduler* s = Scheduler::current();
  Fiber* f = s ? s->running() : nullptr;
  if (!f) {  // a plain thread: sleep it, honouring an enclosing Timeout
    DeadlineSlot& slot = thread_deadline_slot();
    const Deadline until = earliest(d, slot.deadline);
    while (!until.passed()) {
      if (until.is_never()) std::this_thread::sleep_for(std::chrono::hours(24));
      else std::this_thread::sleep_until(until.time());
    }
    if (slot.deadline < d) throw Timeout::Expired(slot.owner, slot.deadline);
    return;
  }
  if (!d.is_never() && d.time() <= Clock::now()) {  // sleep(0): let the others run once
    s->yield();
    return;
  }
  s->check_interrupts(f);
  Waiter w;  // nobody holds it: only the deadline or an interruption ends the wait
  w.arm();
  WaitSpec spec;
  spec.what = "sleep";
  spec.kind = WaitKind::Sleep;
  spec.deadline = d;
  settle(wait(w, spec));
}

void yield() {
  detail::Scheduler* s = detail::Scheduler::current();
  if (s && s->running()) s->yield();
  else std::this_thread::yield();
}

Timeout::Timeout(Deadline d) noexcept : deadline_(d) {
  detail::Fiber* f = detail::current_fiber();
  auto* slot = f ? &st(f).deadline : &detail::thread_deadline_slot();
  slot_ = slot;
  saved_deadline_ = slot->deadline;
  saved_owner_ = slot->owner;
  if (d < slot->deadline) {
    slot->deadline = d;
    slot->owner = this;
  }
}

Timeout::~Timeout() {
  auto* slot = static_cast<detail::DeadlineSlot*>(slot_);
  slot->deadline = saved_deadline_;
  slot->owner = saved_owner_;
}

}  // namespace ringlet
