// AsyncResult<T>: a value (or an exception) that arrives later, from a fiber or a thread,
// like gevent's AsyncResult or a shared future. A copyable handle: copies share one result.
//
//   ringlet::AsyncResult<int> r;
//   ringlet::spawn([r] { r.set(42); });
//   int v = r.get();                       // parks until set (or rethrows set_exception)
//   r.add_done_callback([](auto& res) { ... });
//
// A done-callback runs in a new fiber on the scheduler of the fiber that registered it,
// never inside the setter's stack frame. Registered from a plain thread, it runs in the
// setter's thread right after the result is set. If the registering scheduler has ended by
// then, the callback is dropped with a note on stderr.
#pragma once

#include <atomic>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "ringlet/detail/wait.hpp"
#include "ringlet/time.hpp"

namespace ringlet {

template <class T>
class AsyncResult {
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

 public:
  using Callback = std::function<void(const AsyncResult&)>;

  AsyncResult() : s_(std::make_shared<State>()) {}

  // Set the value (once; a second set throws std::logic_error) and wake every waiter.
  template <class U = T>
    requires(!std::is_void_v<U>)
  void set(U value) const {
    finish([&](State& s) { s.value.emplace(std::move(value)); });
  }
  template <class U = T>
    requires(std::is_void_v<U>)
  void set() const {
    finish([](State& s) { s.value.emplace(); });
  }
  void set_exception(std::exception_ptr e) const {
    finish([&](State& s) { s.error = std::move(e); });
  }

  bool ready() const noexcept { return s_->ready.load(std::memory_order_acquire); }
  bool successful() const {
    std::lock_guard lk(s_->mu);
    return ready() && !s_->error;
  }
  std::exception_ptr exception() const {
    std::lock_guard lk(s_->mu);
    return s_->error;
  }

  // Wait until set; false if the deadline passed first.
  bool wait(Deadline d = Deadline::never()) const {
    if (ready()) return true;
    detail::check_switch_point();
    detail::WaitLock lk(s_->mu);
    if (ready()) return true;
    detail::Waiter w;
    w.arm();
    s_->waiters.push(&w);
    return detail::block(lk, s_->waiters, w, d, "AsyncResult::wait");
  }

  // Wait until set, whatever else happens: a kill stays pending for the next switch point
  // and no Timeout ends the wait. For a result that another thread owes, such as a
  // ThreadPool job writing into the waiter's memory: the deadlock breaker counts on that
  // thread. Internal.
  void wait_uninterruptible(const char* what = "AsyncResult::wait") const noexcept {
    detail::WaitSpec spec;
    spec.what = what;
    spec.kind = detail::WaitKind::Primitive;
    spec.interruptible = false;
    spec.remote = true;
    detail::WaitLock lk(s_->mu);
    while (!ready()) {  // only the setter's grant ends it
      detail::Waiter w;
      w.arm();
      s_->waiters.push(&w);
      (void)detail::wait_in(lk, s_->waiters, w, spec);
    }
  }

  // Wait, then return the value or rethrow the exception. A passed deadline throws
  // std::system_error(std::errc::timed_out).
  std::add_lvalue_reference_t<T> get(Deadline d = Deadline::never()) const {
    if (!wait(d))
      throw std::system_error(std::make_error_code(std::errc::timed_out), "ringlet::AsyncResult::get");
    if (s_->error) std::rethrow_exception(s_->error);
    if constexpr (!std::is_void_v<T>) return *s_->value;
  }

  void add_done_callback(Callback cb) const {
    auto link = detail::current_link();
    {
      std::lock_guard lk(s_->mu);
      if (!ready()) {
        s_->callbacks.push_back({std::move(link), std::move(cb)});
        return;
      }
    }
    dispatch({std::move(link), std::move(cb)});
  }

  friend bool operator==(const AsyncResult& a, const AsyncResult& b) noexcept { return a.s_ == b.s_; }

 private:
  struct Pending {
    std::shared_ptr<detail::SchedulerLink> link;
    Callback cb;
  };
  struct State {
    mutable detail::SpinLock mu;
    std::atomic<bool> ready{false};
    std::optional<Stored> value;
    std::exception_ptr error;
    detail::WaitList waiters;
    std::vector<Pending> callbacks;
  };

  template <class Store>
  void finish(Store store) const {
    std::vector<Pending> cbs;
    {
      std::lock_guard lk(s_->mu);
      if (ready()) throw std::logic_error("ringlet::AsyncResult: set twice");
      store(*s_);
      s_->ready.store(true, std::memory_order_release);
      s_->waiters.grant_all();
      cbs.swap(s_->callbacks);
    }
    for (auto& p : cbs) dispatch(std::move(p));
  }

  void dispatch(Pending p) const {
    if (!p.link) {  // registered on a plain thread: run here
      p.cb(*this);
      return;
    }
    AsyncResult self = *this;
    if (!detail::call_soon(p.link, [self, cb = std::move(p.cb)] { cb(self); }))
      std::fprintf(stderr, "ringlet: an AsyncResult done-callback was dropped: the scheduler "
                           "that registered it has ended\n");
  }

  std::shared_ptr<State> s_;
};

}  // namespace ringlet
