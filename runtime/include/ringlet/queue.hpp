// Queues between fibers and threads: Queue<T> (FIFO), LifoQueue<T>, PriorityQueue<T> (the
// smallest first), bounded or not, with Python's JoinableQueue task_done()/join() and a
// close() after which getters drain what is left and then get "closed" (an empty optional).
//
//   ringlet::Queue<Job> q{5};
//   ringlet::spawn([&] { for (auto& j : jobs) q.put(j); q.close(); });
//   while (auto job = q.get()) handle(*job);
//
// Items move straight from a putter to a waiting getter (or from a waiting putter into the
// queue) only if the notifier wins the waiter's wake race, so a waiter that times out at that
// moment never loses an item and no item is delivered twice. Move-only T works.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ringlet/detail/wait.hpp"
#include "ringlet/time.hpp"

namespace ringlet {

// put() on a closed queue.
class QueueClosed : public std::logic_error {
 public:
  QueueClosed() : std::logic_error("ringlet: put on a closed queue") {}
};

namespace detail {
template <class T>
struct FifoOrder {
  std::deque<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.front());
    items.pop_front();
    return v;
  }
  std::size_t size() const noexcept { return items.size(); }
};
template <class T>
struct LifoOrder {
  std::vector<T> items;
  void push(T&& v) { items.push_back(std::move(v)); }
  T pop() {
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  std::size_t size() const noexcept { return items.size(); }
};
template <class T, class Compare>
struct PriorityOrder {
  std::vector<T> items;  // a heap; Compare{}(a, b) means a comes out before b
  static bool after(const T& a, const T& b) { return Compare{}(b, a); }
  void push(T&& v) {
    items.push_back(std::move(v));
    std::push_heap(items.begin(), items.end(), after);
  }
  T pop() {
    std::pop_heap(items.begin(), items.end(), after);
    T v = std::move(items.back());
    items.pop_back();
    return v;
  }
  std::size_t size() const noexcept { return items.size(); }
};
}  // namespace detail

template <class T, class Order = detail::FifoOrder<T>>
class BasicQueue {
 public:
  // maxsize 0: unbounded.
  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  // Put an item, waiting while the queue is full; false if the deadline passed first.
  // Throws QueueClosed if the queue is (or becomes, while waiting) closed.
  bool put(T item, Deadline d = Deadline::never()) {
    detail::WaitLock lk(mu_);
    if (closed_) throw QueueClosed{};
    if (try_put_locked(item)) return true;
    lk.unlock();
    enter_wait();
    lk.lock();
    if (closed_) throw QueueClosed{};
    if (try_put_locked(item)) return true;
    detail::Waiter w;
    w.arm();
    w.slot = &item;  // a getter moves it into the queue when it makes room
    putters_.push(&w);
    if (detail::block(lk, putters_, w, d, "Queue::put")) {
      if (w.slot == nullptr) throw QueueClosed{};  // woken by close(), item not taken
      return true;
    }
    return false;
  }
  bool try_put(T item) {
    std::lock_guard lk(mu_);
    if (closed_) throw QueueClosed{};
    return try_put_locked(item);
  }

  // Take an item, waiting while the queue is empty. Empty optional: the queue is closed and
  // drained, or the deadline passed first (closed() tells which).
  std::optional<T> get(Deadline d = Deadline::never()) {
    detail::WaitLock lk(mu_);
    if (auto v = try_get_locked()) return v;
    if (closed_) return std::nullopt;
    lk.unlock();
    enter_wait();
    lk.lock();
    if (auto v = try_get_locked()) return v;
    if (closed_) return std::nullopt;
    std::optional<T> slot;
    detail::Waiter w;
    w.arm();
    w.slot = &slot;  // a putter moves its item straight here
    getters_.push(&w);
    detail::block(lk, getters_, w, d, "Queue::get");
    return slot;  // empty if the deadline passed or close() woke us
  }
  std::optional<T> try_get() {
    std::lock_guard lk(mu_);
    return try_get_locked();
  }

  // Count one item from get() as processed; join() waits until every put item was.
  void task_done() {
    std::lock_guard lk(mu_);
    if (unfinished_ == 0) throw std::logic_error("ringlet: task_done() called more often than put()");
    if (--unfinished_ == 0) joiners_.grant_all();
  }
  bool join(Deadline d = Deadline::never()) {
    detail::WaitLock lk(mu_);
    if (unfinished_ == 0) return true;
    lk.unlock();
    enter_wait();
    lk.lock();
    if (unfinished_ == 0) return true;
    detail::Waiter w;
    w.arm();
    joiners_.push(&w);
    return detail::block(lk, joiners_, w, d, "Queue::join");
  }

  // No more puts: waiting putters get QueueClosed, getters drain what is left, then get an
  // empty optional.
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    while (detail::Waiter* w = putters_.grant_one()) w->slot = nullptr;
    getters_.grant_all();  // their slots stay empty: the queue is empty, or they would not wait
  }
  bool closed() const {
    std::lock_guard lk(mu_);
    return closed_;
  }

  std::size_t size() const {
    std::lock_guard lk(mu_);
    return order_.size();
  }
  bool empty() const { return size() == 0; }
  bool full() const {
    std::lock_guard lk(mu_);
    return maxsize_ != 0 && order_.size() >= maxsize_;
  }
  std::size_t maxsize() const noexcept { return maxsize_; }

 private:
  static void enter_wait() { detail::check_switch_point(); }

  bool try_put_locked(T& item) {
    // A waiting getter means the queue is empty: hand the item over directly.
    if (detail::Waiter* w = getters_.grant_one()) {
      static_cast<std::optional<T>*>(w->slot)->emplace(std::move(item));
      ++unfinished_;
      return true;
    }
    if (maxsize_ != 0 && order_.size() >= maxsize_) return false;
    order_.push(std::move(item));
    ++unfinished_;
    return true;
  }

  std::optional<T> try_get_locked() {
    if (order_.size() == 0) return std::nullopt;
    std::optional<T> v{order_.pop()};
    // Room now: take the longest-waiting putter's item in.
    if (detail::Waiter* w = putters_.grant_one()) {
      order_.push(std::move(*static_cast<T*>(w->slot)));
      ++unfinished_;
    }
    return v;
  }

  mutable detail::SpinLock mu_;
  Order order_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  bool closed_ = false;
  detail::WaitList getters_, putters_, joiners_;
};

template <class T>
using Queue = BasicQueue<T, detail::FifoOrder<T>>;
template <class T>
using LifoQueue = BasicQueue<T, detail::LifoOrder<T>>;
// The smallest item (by Compare, std::less by default) comes out first, like Python's.
template <class T, class Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, detail::PriorityOrder<T, Compare>>;

}  // namespace ringlet
