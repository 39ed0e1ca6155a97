#include "ringlet/thread_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace ringlet {

ThreadPool::ThreadPool(std::size_t n) {
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  threads_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
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
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw std::logic_error("ringlet::ThreadPool: submit while shutting down");
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ThreadPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left to run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();  // exceptions were caught into the job's AsyncResult
  }
}

}  // namespace ringlet
