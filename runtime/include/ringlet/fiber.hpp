// Fibers: spawn, Greenlet handles, join/kill, joinall/wait.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/time.hpp"

namespace ringlet {

// Raised inside a fiber at its next switch point after kill(). Like gevent's GreenletExit it
// does not derive from std::exception, so generic handlers do not swallow it; catch it by
// name to clean up (blocking is allowed in the handler) and let it propagate.
class GreenletExit {
 public:
  const char* what() const noexcept { return "ringlet::GreenletExit"; }
};

struct SpawnOptions {
  std::string name{};           // shown in reports; default "fiber-<id>"
  std::size_t stack_size = 0;   // bytes; 0 = the scheduler's default (RINGLET_STACK_SIZE, 64 KiB)
  bool daemon = false;          // run() does not wait for daemons; it kills them at the end
};

// An untyped, copyable handle to a fiber. The fiber runs whether or not a handle exists.
class BasicGreenlet {
 public:
  BasicGreenlet() noexcept = default;
  explicit BasicGreenlet(detail::Fiber* f) noexcept : f_(f) {
    if (f_) detail::handle_acquired(f_);
  }
  BasicGreenlet(const BasicGreenlet& o) noexcept : BasicGreenlet(o.f_) {}
  BasicGreenlet(BasicGreenlet&& o) noexcept : f_(std::exchange(o.f_, nullptr)) {}
  BasicGreenlet& operator=(BasicGreenlet o) noexcept {
    std::swap(f_, o.f_);
    return *this;
  }
  ~BasicGreenlet() {
    if (f_) detail::handle_released(f_);
  }

  bool valid() const noexcept { return f_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }
  std::uint64_t id() const noexcept { return f_ ? f_->id : 0; }
  std::string name() const { return f_ ? f_->display_name() : std::string{}; }
  // Finished (returned, threw, or was killed).
  bool ready() const noexcept { return f_ && f_->finished.load(std::memory_order_acquire); }
  // Finished by returning normally.
  bool successful() const noexcept { return ready() && !f_->error; }

  // Wait for the fiber to finish; false if the deadline came first. A switch point.
  bool join(Deadline d = Deadline::never()) const { return detail::join_fiber(f_, d); }

  // Raise GreenletExit in the fiber at its next switch point. With block (the default),
  // wait until it has finished or the deadline passes; returns whether it has finished.
  bool kill(bool block = true, Deadline d = Deadline::never()) const {
    detail::kill_fiber(f_);
    return block ? join(d) : ready();
  }

  // The exception the fiber ended with (null if it returned or still runs). Reading it
  // counts as observing it, so it is not reported as unobserved.
  std::exception_ptr exception() const noexcept {
    if (!f_) return nullptr;
    if (!ready()) return nullptr;
    f_->observed.store(true, std::memory_order_relaxed);
    return f_->error;
  }

  friend bool operator==(const BasicGreenlet& a, const BasicGreenlet& b) noexcept {
    return a.f_ == b.f_;
  }

  detail::Fiber* native() const noexcept { return f_; }

 protected:
  detail::Fiber* f_ = nullptr;
};

template <class T>
class Greenlet : public BasicGreenlet {
 public:
  using value_type = T;
  Greenlet() noexcept = default;
  explicit Greenlet(detail::ResultFiber<T>* f) noexcept : BasicGreenlet(f) {}

  // Wait for the fiber, then return its value or rethrow its exception (GreenletExit if it
  // was killed). For a move-only T, move it out: `auto v = std::move(g.get());`.
  std::add_lvalue_reference_t<T> get() const {
    join();
    auto* rf = static_cast<detail::ResultFiber<T>*>(f_);
    if (rf->error) detail::rethrow_outcome(rf);
    rf->observed.store(true, std::memory_order_relaxed);
    if constexpr (!std::is_void_v<T>) return *rf->value;
  }
};

namespace detail {
template <class Fn, class... Args>
using spawn_result_t = std::invoke_result_t<std::decay_t<Fn>&&, std::decay_t<Args>&&...>;

template <class Fn, class... Args>
auto make_fiber(Fn&& fn, Args&&... args) {
  using R = spawn_result_t<Fn, Args...>;
  static_assert(!std::is_reference_v<R>,
                "a fiber's function must return a value; wrap references in std::ref");
  auto call = [fn = std::forward<Fn>(fn),
               args = std::make_tuple(std::forward<Args>(args)...)]() mutable -> R {
    return std::apply(std::move(fn), std::move(args));
  };
  return new FiberImpl<R, decltype(call)>(std::move(call));
}
}  // namespace detail

// Start fn(args...) in a new fiber; it first runs when the caller next switches (gevent's
// spawn). Arguments are decay-copied like std::thread's; use std::ref to share.
template <class Fn, class... Args>
  requires(!std::is_same_v<std::remove_cvref_t<Fn>, SpawnOptions>)
auto spawn(Fn&& fn, Args&&... args) {
  return spawn(SpawnOptions{}, std::forward<Fn>(fn), std::forward<Args>(args)...);
}

template <class Fn, class... Args>
auto spawn(const SpawnOptions& opts, Fn&& fn, Args&&... args) {
  using R = detail::spawn_result_t<Fn, Args...>;
  auto* f = detail::make_fiber(std::forward<Fn>(fn), std::forward<Args>(args)...);
  Greenlet<R> g{f};  // the handle's reference; spawn_fiber takes over the creation reference
  detail::spawn_fiber(f, opts);
  return g;
}

// The running fiber, or an empty handle on a plain thread.
BasicGreenlet current();

namespace detail {
void spawn_fiber_on(unsigned core, Fiber* f, const SpawnOptions& opts);
}

// Start fn(args...) in a new fiber on the scheduler of `core` (0 .. cores()-1) of this run
// (RunOptions::threads). The fiber stays on that core; the returned Greenlet may be joined,
// killed and read from any fiber of the run, on any core. spawn_on(this_core(), ...) is
// spawn(...). std::out_of_range for a core the run does not have.
template <class Fn, class... Args>
  requires(!std::is_same_v<std::remove_cvref_t<Fn>, SpawnOptions>)
auto spawn_on(unsigned core, Fn&& fn, Args&&... args) {
  return spawn_on(core, SpawnOptions{}, std::forward<Fn>(fn), std::forward<Args>(args)...);
}

template <class Fn, class... Args>
auto spawn_on(unsigned core, const SpawnOptions& opts, Fn&& fn, Args&&... args) {
  using R = detail::spawn_result_t<Fn, Args...>;
  auto* f = detail::make_fiber(std::forward<Fn>(fn), std::forward<Args>(args)...);
  Greenlet<R> g{f};
  detail::spawn_fiber_on(core, f, opts);
  return g;
}

// The core (scheduler index) the calling fiber runs on: 0 for the thread that called run().
// 0 on a plain thread.
unsigned this_core() noexcept;
// How many schedulers the calling fiber's run has (RunOptions::threads); 0 on a plain thread.
// In a process forked from a fiber of a multi-core run, the forking fiber's scheduler is
// the run's only core: cores() is 1 there and this_core() 0 (spawn_on(0, ...) is spawn,
// another core is std::out_of_range).
unsigned cores() noexcept;

namespace detail {
bool joinall_fibers(const std::vector<Fiber*>& fs, Deadline d);
std::vector<std::size_t> wait_fibers(const std::vector<Fiber*>& fs, std::size_t count,
                                     Deadline d);
template <class Range>
std::vector<Fiber*> natives(const Range& gs) {
  std::vector<Fiber*> out;
  for (const auto& g : gs) out.push_back(g.native());
  return out;
}
}  // namespace detail

// Wait for every greenlet in the range; false if the deadline came first.
template <class Range>
bool joinall(const Range& gs, Deadline d = Deadline::never()) {
  return detail::joinall_fibers(detail::natives(gs), d);
}

// Wait until at least `count` of the greenlets have finished (all of them by default) or
// the deadline passes. Returns the indices of those that have finished, in range order.
template <class Range>
std::vector<std::size_t> wait(const Range& gs, std::size_t count = SIZE_MAX,
                              Deadline d = Deadline::never()) {
  return detail::wait_fibers(detail::natives(gs), count, d);
}

}  // namespace ringlet
