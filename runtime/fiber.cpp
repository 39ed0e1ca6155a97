// Greenlet handles, join/kill/wait, and the run() host.
#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "detail/scheduler.hpp"
#include "ringlet/fiber.hpp"
#include "ringlet/pool.hpp"
#include "ringlet/run.hpp"

namespace ringlet {

namespace detail {

namespace {

thread_local DeadlineSlot tls_deadline;

Scheduler& owner_scheduler(Fiber* f, const char* op) {
  if (!f) throw std::invalid_argument(std::string("ringlet: ") + op + " on an empty Greenlet");
  Scheduler* s = Scheduler::current();
  if (!s || s != f->sched)
    throw std::logic_error(std::string("ringlet: ") + op +
                           " of a fiber from outside its scheduler's thread is not supported "
                           "(cross-thread handles come with multi-core support)");
  return *s;
}

void link_join(Fiber* target, JoinNode* n) {
  n->prev = nullptr;
  n->next = target->joiners;
  if (target->joiners) target->joiners->prev = n;
  target->joiners = n;
}

void unlink_join(Fiber* target, JoinNode* n) {
  if (n->prev) n->prev->next = n->next;
  else if (target->joiners == n) target->joiners = n->next;
  if (n->next) n->next->prev = n->prev;
  n->next = n->prev = nullptr;
}

}  // namespace

DeadlineSlot& thread_deadline_slot() noexcept { return tls_deadline; }

Fiber::~Fiber() { destroy_fls(this); }

std::string Fiber::display_name() const {
  return name.empty() ? "fiber-" + std::to_string(id) : name;
}

void spawn_fiber(Fiber* f, const SpawnOptions& opts) {
  Scheduler* s = Scheduler::current();
  if (!s) {
    f->status = FiberStatus::Done;
    f->release();
    throw std::logic_error("ringlet::spawn called outside ringlet::run (no scheduler on this thread)");
  }
  s->spawn(f, opts);
}

Fiber* current_fiber() noexcept {
  Scheduler* s = Scheduler::current();
  return s ? s->running() : nullptr;
}

bool join_fiber(Fiber* f, Deadline d) {
  if (f && f->status == FiberStatus::Done) return true;
  Scheduler& s = owner_scheduler(f, "join");
  Fiber* self = s.running();
  if (!self) throw std::logic_error("ringlet: join from the scheduler loop");
  if (self == f) throw std::logic_error("ringlet: a fiber cannot join itself");
  s.check_interrupts(self);
  for (;;) {
    JoinNode node{self, self->epoch.load(std::memory_order_relaxed)};
    link_join(f, &node);
    WakeReason r = s.park(node.token, earliest(d, self->deadline.deadline), WaitInfo{"join", f});
    unlink_join(f, &node);
    if (r == WakeReason::Killed || r == WakeReason::Deadlock) s.settle(self, r, d);  // throws
    if (f->status == FiberStatus::Done) return true;
    if (r == WakeReason::TimedOut) {
      s.settle(self, r, d);  // throws if it was an enclosing Timeout
      return false;
    }
  }
}

void kill_fiber(Fiber* f) {
  if (f && f->status == FiberStatus::Done) return;
  Scheduler& s = owner_scheduler(f, "kill");
  if (f == s.running()) throw GreenletExit{};  // killing yourself: exit now
  s.kill(f);
}

void handle_acquired(Fiber* f) noexcept {
  ++f->handles;
  f->add_ref();
}

void handle_released(Fiber* f) noexcept {
  if (--f->handles == 0 && f->status == FiberStatus::Done) report_unobserved(f);
  f->release();
}

void rethrow_outcome(Fiber* f) {
  f->observed = true;
  std::rethrow_exception(f->error);
}

void report_unobserved(Fiber* f) {
  if (!f->error || f->observed || f->killed || f->reported) return;
  f->reported = true;
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
  std::vector<JoinNode> nodes(fs.size());
  for (;;) {
    std::vector<std::size_t> done;
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (fs[i] && fs[i]->status == FiberStatus::Done) done.push_back(i);
    if (done.size() >= count) return done;
    Fiber* pending = nullptr;
    for (Fiber* f : fs)
      if (f && f->status != FiberStatus::Done) pending = f;
    Scheduler& s = owner_scheduler(pending, "wait");
    Fiber* self = s.running();
    if (!self) throw std::logic_error("ringlet: wait from the scheduler loop");
    s.check_interrupts(self);
    const std::uint64_t token = self->epoch.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < fs.size(); ++i) {
      if (fs[i]->status == FiberStatus::Done) continue;
      nodes[i] = JoinNode{self, token};
      link_join(fs[i], &nodes[i]);
    }
    WakeReason r = s.park(token, earliest(d, self->deadline.deadline), WaitInfo{"wait", pending});
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (nodes[i].waiter) {
        unlink_join(fs[i], &nodes[i]);
        nodes[i] = JoinNode{};
      }
    if (r == WakeReason::Notified) continue;
    if (s.settle(self, r, d)) {  // the deadline passed: report what has finished
      std::vector<std::size_t> finished;
      for (std::size_t i = 0; i < fs.size(); ++i)
        if (fs[i]->status == FiberStatus::Done) finished.push_back(i);
      return finished;
    }
  }
}

void kill_and_wait(std::vector<BasicGreenlet>& members) noexcept {
  for (auto& g : members) {
    Fiber* f = g.native();
    if (f->status == FiberStatus::Done) continue;
    Scheduler* s = Scheduler::current();
    Fiber* self = s ? s->running() : nullptr;
    if (!self || f->sched != s || f == self) continue;  // nothing this fiber can wait for
    s->kill(f);  // once: a second kill would interrupt the member's own cleanup
  }
  for (auto& g : members) {
    Fiber* f = g.native();
    Scheduler* s = Scheduler::current();
    Fiber* self = s ? s->running() : nullptr;
    if (!self || f->sched != s || f == self) continue;
    // Uninterruptibly: a kill or an expired Timeout aimed at us stays pending and is raised
    // at our next switch point, after the group is gone.
    while (f->status != FiberStatus::Done) {
      JoinNode node{self, self->epoch.load(std::memory_order_relaxed)};
      link_join(f, &node);
      s->park(node.token, Deadline::never(), WaitInfo{"join (group end)", f}, false);
      unlink_join(f, &node);
    }
  }
  members.clear();
}

RunHost::RunHost(const RunOptions& opts) : sched_(new Scheduler(opts)) {}
RunHost::~RunHost() { delete sched_; }
void RunHost::run(Fiber* main) { sched_->run_main(main); }

}  // namespace detail

BasicGreenlet current() { return BasicGreenlet(detail::current_fiber()); }

const char* engine() {
  detail::Scheduler* s = detail::Scheduler::current();
  return s ? s->reactor().name() : "none";
}

}  // namespace ringlet
