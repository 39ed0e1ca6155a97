// The fiber as the public templates see it: spawn() and Greenlet<T> are templates, so the
// installed headers carry this much of it. Internal: nothing here is part of the API.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "ringlet/time.hpp"

namespace ringlet {
struct SpawnOptions;
}  // namespace ringlet

namespace ringlet::detail {

struct FiberState;        // the runtime's part of a fiber (runtime/internal/fiber_state.hpp)
struct FiberStateAccess;

// A fiber as handles and the spawn templates see it: its function (invoke/drop_callable,
// implemented by FiberImpl below), its references, identity and outcome. Everything the
// scheduler keeps per fiber (switch context, queues, wake token, status, stack, deadlines,
// joiners, sanitizer contexts, errno, fiber-local storage) is the runtime's private
// FiberState. It is not a separate allocation: it lives in state_, opaque bytes inside this
// object, which the constructor and destructor (defined in the library) construct and
// destroy. So a spawn stays one allocation (`new FiberImpl<R, Fn>`), and the runtime reaches
// the state at a constant offset, as it reached a member before. The library checks at
// compile time that FiberState fits kStateSize and kStateAlign exactly, so a layout change is
// a compile error, never an overrun.
class Fiber {
 public:
  Fiber() noexcept;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  virtual ~Fiber();

  // Runs the fiber's function and stores its value; exceptions propagate to the caller.
  virtual void invoke() = 0;
  // Destroys the stored callable (and the arguments it captured) once it has run.
  virtual void drop_callable() noexcept = 0;

  void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  std::string display_name() const;  // "name" or "fiber-<id>"

  std::atomic<int> refs{1};         // one for the scheduler while alive, one per handle
  std::atomic<int> handles{0};      // Greenlet handles alive (copied across cores)

  // FiberState's size and alignment (checked where it is defined). 8, not max_align_t: the
  // fiber keeps the size and alignment it had when these fields were its members.
  static constexpr std::size_t kStateSize = 232;
  static constexpr std::size_t kStateAlign = 8;

 private:
  friend struct FiberStateAccess;
  alignas(kStateAlign) unsigned char state_[kStateSize];

 public:
  std::uint64_t id = 0;
  // Set (release) once the fiber has finished and its outcome is stored: what a handle on
  // any core reads.
  std::atomic<bool> finished{false};
  std::atomic<bool> observed{false};  // someone looked at the outcome (get/exception)
  std::exception_ptr error;
  std::string name;
};

template <class R>
class ResultFiber : public Fiber {
 public:
  std::optional<R> value;
};

template <>
class ResultFiber<void> : public Fiber {};

template <class R, class Fn>
class FiberImpl final : public ResultFiber<R> {
 public:
  explicit FiberImpl(Fn&& fn) : fn_(std::move(fn)) {}
  void invoke() override {
    if constexpr (std::is_void_v<R>) {
      (*fn_)();
    } else {
      this->value.emplace((*fn_)());
    }
  }
  void drop_callable() noexcept override { fn_.reset(); }

 private:
  std::optional<Fn> fn_;
};

// Entry points the templates need; defined in the library.
void spawn_fiber(Fiber* f, const SpawnOptions& opts);  // takes the scheduler's reference
Fiber* current_fiber() noexcept;                       // null on a plain thread
bool join_fiber(Fiber* f, Deadline d);                 // true once f is done
void kill_fiber(Fiber* f);                             // request GreenletExit in f
void handle_acquired(Fiber* f) noexcept;
void handle_released(Fiber* f) noexcept;
[[noreturn]] void rethrow_outcome(Fiber* f);           // f->error, marking it observed

}  // namespace ringlet::detail
