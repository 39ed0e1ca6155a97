#include "ringlet/thread_pool.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "internal/native_thread.hpp"
#include "internal/scheduler.hpp"

namespace ringlet {

ThreadPool::ThreadPool(std::size_t n) {
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  max_ = n;
  threads_.reserve(n);
  std::lock_guard lk(mu_);
  for (std::size_t i = 0; i < n; ++i) start_thread();
}

ThreadPool::ThreadPool(OnDemand opts) : max_(opts.max), quiet_(opts.quiet) {
  if (max_ == 0) max_ = std::max(1u, std::thread::hardware_concurrency());
  threads_.reserve(max_);
}

void ThreadPool::start_thread() {
  threads_.emplace_back([this] { work(); });
  ++idle_;
  started_.fetch_add(1, std::memory_order_relaxed);
  if (quiet_) detail::quiet_threads.fetch_add(1, std::memory_order_relaxed);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::enqueue(std::function<void()> job) {
  bool wake;
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw std::logic_error("ringlet::ThreadPool: submit while shutting down");
    jobs_.push_back(std::move(job));
    queued_.fetch_add(1, std::memory_order_release);
    // Every worker busy (or none yet): one more, up to the limit.
    if (idle_ < jobs_.size() && threads_.size() < max_) start_thread();
    wake = sleeping_ > 0;  // a spinning worker will see it without a futex wake
  }
  if (wake) cv_.notify_one();
}

void ThreadPool::work() {
  // After a job, look for the next one for a short while before sleeping: waking a
  // sleeping thread costs tens of microseconds on a VM, a round trip two of them.
  constexpr auto kSpin = std::chrono::microseconds(50);
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpin;
    while (queued_.load(std::memory_order_acquire) == 0 &&
           std::chrono::steady_clock::now() < spin_until)
      __builtin_ia32_pause();
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      if (jobs_.empty()) {
        ++sleeping_;
        cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
        --sleeping_;
      }
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      --idle_;
    }
    job();  // exceptions were caught into the job's AsyncResult
    std::lock_guard lk(mu_);
    ++idle_;
  }
}

}  // namespace ringlet
