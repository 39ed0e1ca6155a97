// Greenlet handles: spawn, join, wait, kill and their outcomes (the run() host is host.cpp).
#include <algorithm>
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include "internal/hot.hpp"
#include "internal/scheduler.hpp"
#include "ringlet/fiber.hpp"
#include "ringlet/pool.hpp"
#include "ringlet/run.hpp"

namespace ringlet {

namespace detail {

namespace {

thread_local DeadlineSlot tls_deadline;

// Whether fiber f belongs to the run of scheduler s (any of its cores).
bool same_run(const Scheduler& s, const Fiber* f) noexcept {
  if (st(f).sched == &s) return true;
  if (CoreGroup* g = s.group())
    return std::find(g->scheds.begin(), g->scheds.end(), st(f).sched) != g->scheds.end();
  return false;
}

// The calling fiber's scheduler, for a wait on f (a fiber of this run, on any core).
Scheduler& waiting_scheduler(Fiber* f, const char* op) {
  if (!f) throw std::invalid_argument(std::string("ringlet: ") + op + " on an empty Greenlet");
  Scheduler* s = Scheduler::current();
  if (!s || !s->running())
    throw std::logic_error(std::string("ringlet: ") + op +
                           " of a fiber from a plain thread or the scheduler loop is not "
                           "supported (join from a fiber)");
  if (!same_run(*s, f))
    throw std::logic_error(std::string("ringlet: ") + op +
                           " of a fiber of another ringlet::run is not supported");
  return *s;
}

// Another core's fiber: its own scheduler kills it, on its loop (a reference keeps it until
// then). Throws if the call cannot be posted (no memory), holding nothing.
void kill_on_owner(Fiber* f) {
  Scheduler* owner = st(f).sched;
  f->add_ref();
  try {
    owner->post_call([owner, f] {
      owner->kill(f);
      f->release();
    });
  } catch (...) {
    f->release();
    throw;
  }
}

// Link w (armed) into target's joiners unless target has finished (then false).
bool link_join(Fiber* target, Waiter* w) {
  std::lock_guard<SpinLock> lock(st(target).join_lock);
  if (target->finished.load(std::memory_order_relaxed)) return false;
  st(target).joiners.push(w);
  return true;
}

void unlink_join(Fiber* target, Waiter* w) {
  std::lock_guard<SpinLock> lock(st(target).join_lock);
  st(target).joiners.remove(w);
}

// One wait for `target` to finish (or for any of several, linked already).
// A fiber of another core of the run may be the one waited for: not a wake owed from
// outside the run (WaitSpec::remote), since the run-wide deadlock check sees every core.
Woke wait_join(Waiter& w, const char* what, const Fiber* target, Deadline d,
               bool interruptible = true) {
  WaitSpec spec;
  spec.what = what;
  spec.target = target;
  spec.kind = WaitKind::Join;
  spec.deadline = d;
  spec.interruptible = interruptible;
  return wait(w, spec);
}

}  // namespace

DeadlineSlot& thread_deadline_slot() noexcept { return tls_deadline; }

// The runtime's part of the fiber lives in state_ (see ringlet/detail/fiber.hpp).
Fiber::Fiber() noexcept { ::new (static_cast<void*>(state_)) FiberState; }

Fiber::~Fiber() {
  destroy_fls(this);
  st(this).~FiberState();
}

std::string Fiber::display_name() const {
  return name.empty() ? "fiber-" + std::to_string(id) : name;
}

namespace {
// Out of line, so that spawn_fiber saves no register: its return address (the spawn site)
// is then read from the top of the stack and the call to Scheduler::spawn stays a jump (with
// the throw inline, reading the address cost 8 instructions per spawn).
[[noreturn, gnu::noinline, gnu::cold]] void spawn_outside_run(Fiber* f) {
  st(f).status = FiberStatus::Done;
  f->release();
  throw std::logic_error("ringlet::spawn called outside ringlet::run (no scheduler on this thread)");
}
}  // namespace

void spawn_fiber(Fiber* f, const SpawnOptions& opts) {
  Scheduler* s = Scheduler::current();
  if (!s) spawn_outside_run(f);
  st(f).spawned_from = __builtin_return_address(0);
  s->spawn(f, opts);
}

Fiber* current_fiber() noexcept {
  Scheduler* s = Scheduler::current();
  return s ? s->running() : nullptr;
}

bool join_fiber(Fiber* f, Deadline d) {
  if (f && f->finished.load(std::memory_order_acquire)) return true;
  Scheduler& s = waiting_scheduler(f, "join");
  Fiber* self = s.running();
  if (self == f) throw std::logic_error("ringlet: a fiber cannot join itself");
  s.check_interrupts(self);
  for (;;) {
    Waiter w;
    w.arm();
    if (!link_join(f, &w)) return true;
    const Woke r = wait_join(w, "join", f, d);
    unlink_join(f, &w);
    if (r == Woke::Killed || r == Woke::Deadlock) settle(r);  // throws
    if (f->finished.load(std::memory_order_acquire)) return true;
    if (settle(r)) return false;  // the deadline passed (an enclosing Timeout throws)
  }
}

void kill_fiber(Fiber* f) {
  if (!f) throw std::invalid_argument("ringlet: kill on an empty Greenlet");
  if (f->finished.load(std::memory_order_acquire)) return;
  Scheduler* s = Scheduler::current();
  if (s && st(f).sched == s) {
    if (f == s->running()) throw GreenletExit{};  // killing yourself: exit now
    s->kill(f);
    return;
  }
  if (!s || !same_run(*s, f))
    throw std::logic_error("ringlet: kill of a fiber of another ringlet::run or from a plain "
                           "thread is not supported");
  kill_on_owner(f);
}

void handle_acquired(Fiber* f) noexcept {
  f->handles.fetch_add(1, std::memory_order_relaxed);
  f->add_ref();
}

void handle_released(Fiber* f) noexcept {
  if (f->handles.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      f->finished.load(std::memory_order_seq_cst))
    report_unobserved(f);
  f->release();
}

void rethrow_outcome(Fiber* f) {
  f->observed.store(true, std::memory_order_relaxed);
  std::rethrow_exception(f->error);
}

void report_unobserved(Fiber* f) {
  if (!f->error || f->observed.load(std::memory_order_relaxed) || st(f).killed) return;
  if (st(f).reported.exchange(true, std::memory_order_acq_rel)) return;
  std::string what = "an exception of unknown type";
  try {
    std::rethrow_exception(f->error);
  } catch (const std::exception& e) {
    what = std::string(e.what()) + " (" + typeid(e).name() + ")";
  } catch (const Timeout::Expired& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "ringlet: fiber '%s' (#%llu) ended with an exception nobody observed: %s\n",
               f->display_name().c_str(), static_cast<unsigned long long>(f->id), what.c_str());
}

bool joinall_fibers(const std::vector<Fiber*>& fs, Deadline d) {
  for (Fiber* f : fs)
    if (!join_fiber(f, d)) return false;
  return true;
}

std::vector<std::size_t> wait_fibers(const std::vector<Fiber*>& fs, std::size_t count, Deadline d) {
  for (Fiber* f : fs)
    if (!f) throw std::invalid_argument("ringlet: wait on an empty Greenlet");
  if (count > fs.size()) count = fs.size();
  auto finished = [&] {
    std::vector<std::size_t> done;
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (fs[i]->finished.load(std::memory_order_acquire)) done.push_back(i);
    return done;
  };
  // One waiter per fiber, all armed with the same token: the first to finish wakes us.
  std::vector<Waiter> waiters(fs.size());
  for (;;) {
    std::vector<std::size_t> done = finished();
    if (done.size() >= count) return done;
    Fiber* pending = nullptr;
    for (Fiber* f : fs)
      if (!f->finished.load(std::memory_order_acquire)) pending = f;
    Scheduler& s = waiting_scheduler(pending, "wait");
    Fiber* self = s.running();
    s.check_interrupts(self);
    std::vector<bool> linked(fs.size(), false);
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (fs[i] == self) throw std::logic_error("ringlet: a fiber cannot wait for itself");
      if (!same_run(s, fs[i]))
        throw std::logic_error("ringlet: wait for a fiber of another ringlet::run is not supported");
      waiters[i].arm();
      linked[i] = link_join(fs[i], &waiters[i]);
    }
    const Woke r = wait_join(waiters.front(), "wait", pending, d);
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (linked[i]) unlink_join(fs[i], &waiters[i]);
    if (r == Woke::Notified) continue;
    if (settle(r)) return finished();  // the deadline passed: report what has finished
  }
}

void kill_and_wait(std::vector<BasicGreenlet>& members, bool kill) noexcept {
  Scheduler* s = Scheduler::current();
  Fiber* self = s ? s->running() : nullptr;
  auto waitable = [&](Fiber* f) {  // a fiber of this run, on any core, but not us
    return self && f != self && !f->finished.load(std::memory_order_acquire) && same_run(*s, f);
  };
  if (kill) {
    for (auto& g : members) {
      Fiber* f = g.native();
      if (!waitable(f)) continue;
      // Once: a second kill would interrupt the member's own cleanup.
      if (st(f).sched == s) {
        s->kill(f);
      } else {
        try {
          kill_on_owner(f);
        } catch (...) {  // no memory to post: it is waited for unkilled
        }
      }
    }
  }
  for (auto& g : members) {
    Fiber* f = g.native();
    if (!waitable(f)) continue;
    // Uninterruptibly: a kill or an expired Timeout aimed at us stays pending and is raised
    // at our next switch point, after the group is gone.
    while (!f->finished.load(std::memory_order_acquire)) {
      Waiter w;
      w.arm();
      if (!link_join(f, &w)) break;
      wait_join(w, "join (group end)", f, Deadline::never(), /*interruptible=*/false);
      unlink_join(f, &w);
    }
  }
  members.clear();
}

void spawn_fiber_on(unsigned core, Fiber* f, const SpawnOptions& opts) {
  Scheduler* s = Scheduler::current();
  CoreGroup* g = s ? s->group() : nullptr;
  const unsigned n = g ? static_cast<unsigned>(g->scheds.size()) : 1;
  if (!s || core >= n) {
    st(f).status = FiberStatus::Done;
    f->finished.store(true, std::memory_order_release);
    f->release();
    if (!s) throw std::logic_error("ringlet::spawn_on called outside ringlet::run (no scheduler on this thread)");
    throw std::out_of_range("ringlet::spawn_on: core " + std::to_string(core) + " does not exist: this run has " +
                            std::to_string(n) + " (RunOptions::threads)");
  }
  st(f).spawned_from = __builtin_return_address(0);
  Scheduler* target = g ? g->scheds[core] : s;
  if (target == s) {
    s->spawn(f, opts);
    return;
  }
  // Counted now, so that the run cannot end while the fiber is on its way.
  g->live.fetch_add(1, std::memory_order_relaxed);
  if (!opts.daemon) g->live_nondaemon.fetch_add(1, std::memory_order_relaxed);
  st(f).sched = target;  // before it is published: handles on this core read it
  target->post_spawn(f, opts);
}

}  // namespace detail

BasicGreenlet current() { return BasicGreenlet(detail::current_fiber()); }

RINGLET_HOT unsigned this_core() noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  return s ? s->core() : 0;
}

unsigned cores() noexcept {
  detail::Scheduler* s = detail::Scheduler::current();
  if (!s) return 0;
  detail::CoreGroup* g = s->group();
  return g ? static_cast<unsigned>(g->scheds.size()) : 1;
}

const char* engine() {
  detail::Scheduler* s = detail::Scheduler::current();
  return s ? s->reactor().name() : "none";
}

}  // namespace ringlet
