// ThreadPool: blocking or CPU-heavy work on OS threads, waited for by fibers without
// blocking their scheduler. The result is an AsyncResult; when the job ends, the waiting
// fiber is woken through its scheduler's reactor (an eventfd write), not by polling.
//
//   ringlet::ThreadPool pool{4};
//   auto r = pool.submit([] { return expensive(); });
//   auto v = r.get(5s);   // other fibers keep running meanwhile
//
// Workers are real OS threads, made with the C library's own pthread_create whatever
// interposes it, and start with every signal blocked: a signal sent to the process goes to
// the program's own threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/async_result.hpp"

namespace ringlet {

namespace detail {
class NativeThread;  // the runtime's own threads (defined in its sources)
}

class ThreadPool {
 public:
  // n threads (0: one per online CPU).
  explicit ThreadPool(std::size_t n = 0);
  // Up to `max` threads, started only as jobs find every existing worker busy.
  struct OnDemand {
    std::size_t max = 0;  // 0: one per online CPU
    // Internal: threads that never touch a user's primitive (ringlet's resolvers) and so do
    // not make a fiber parked on a Lock "possibly woken by another thread".
    bool quiet = false;
  };
  explicit ThreadPool(OnDemand opts);
  // Runs every job already submitted, then joins the threads.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  template <class Fn, class... Args>
  auto submit(Fn&& fn, Args&&... args) {
    using R = std::invoke_result_t<std::decay_t<Fn>&&, std::decay_t<Args>&&...>;
    AsyncResult<R> result;
    enqueue([result, fn = std::forward<Fn>(fn),
             args = std::make_tuple(std::forward<Args>(args)...)]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          std::apply(std::move(fn), std::move(args));
          result.set();
        } else {
          result.set(std::apply(std::move(fn), std::move(args)));
        }
      } catch (...) {
        result.set_exception(std::current_exception());
      }
    });
    return result;
  }

  // Threads started so far.
  std::size_t size() const noexcept { return started_.load(std::memory_order_relaxed); }

 private:
  void enqueue(std::function<void()> job);
  void work();
  void start_thread();  // with mu_ held (or before any job)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::atomic<std::size_t> queued_{0};  // jobs_.size(), readable without the mutex
  std::size_t sleeping_ = 0;            // workers blocked on cv_
  std::size_t idle_ = 0;                // workers between jobs (spinning or sleeping)
  std::size_t max_ = 0;
  bool quiet_ = false;
  std::atomic<std::size_t> started_{0};
  bool stopping_ = false;
  std::vector<detail::NativeThread> threads_;
};

}  // namespace ringlet
