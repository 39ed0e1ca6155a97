// Group and Pool: gevent's gevent.pool. A Group tracks the fibers spawned through it; a Pool
// is a Group with a size limit: spawn() parks the caller while the pool is full.
//
//   ringlet::Pool pool{4};
//   std::vector<int> squares = pool.map([](int x) { return x * x; }, numbers);
//   auto results = pool.imap_unordered(fetch, urls);
//   while (auto page = results.next()) store(*page);   // in completion order
#pragma once

#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/fiber.hpp"
#include "ringlet/queue.hpp"
#include "ringlet/sync.hpp"

namespace ringlet {

// Results of imap_unordered, in the order the jobs finished. The group must outlive the
// reading (its end kills the jobs still running). next() returns an empty
// optional once every job has been returned; a job that threw rethrows from the next()
// that reaches it.
template <class R>
class UnorderedResults {
 public:
  std::optional<R> next(Deadline d = Deadline::never()) {
    auto item = q_->get(d);
    if (!item) return std::nullopt;
    if (item->error) std::rethrow_exception(item->error);
    return std::move(item->value);
  }

 private:
  friend class GroupBase;
  struct Item {
    std::optional<R> value;
    std::exception_ptr error;
  };
  std::shared_ptr<Queue<Item>> q_ = std::make_shared<Queue<Item>>();
};

namespace detail {
// Kill every member (kill = false: do not) and wait, uninterruptibly, until each has ended;
// members may sit on any core of the run. Empties `members`.
void kill_and_wait(std::vector<BasicGreenlet>& members, bool kill = true) noexcept;
}  // namespace detail

// What Group and Pool share; they differ only in how a spawn is admitted.
class GroupBase {
 public:
  // Spawn through the group (waiting for a free slot in a Pool).
  template <class Fn, class... Args>
  auto spawn(Fn&& fn, Args&&... args) {
    if (limited()) slots_.acquire();
    prune();
    auto* slots = limited() ? &slots_ : nullptr;
    struct Release {
      Semaphore* s;
      ~Release() {
        if (s) s->release();
      }
    };
    try {
      auto g = ringlet::spawn(
          [slots, fn = std::forward<Fn>(fn),
           args = std::make_tuple(std::forward<Args>(args)...)]() mutable {
            Release r{slots};  // the slot frees when the fiber ends, however it ends
            return std::apply(std::move(fn), std::move(args));
          });
      members_.push_back(g);
      return g;
    } catch (...) {
      if (slots) slots->release();
      throw;
    }
  }

  GroupBase(const GroupBase&) = delete;
  GroupBase& operator=(const GroupBase&) = delete;

  // Track a fiber spawned elsewhere (it takes no slot).
  void add(const BasicGreenlet& g) { members_.push_back(g); }

  // Fibers of the group still running.
  std::size_t size() {
    prune();
    return members_.size();
  }
  // Free slots (a Pool), or SIZE_MAX (a Group).
  std::size_t free_count() const { return limited() ? slots_.value() : SIZE_MAX; }

  // Wait for every fiber of the group; false if the deadline passed first.
  bool join(Deadline d = Deadline::never()) {
    auto members = members_;
    return joinall(members, d);
  }
  // Kill every fiber of the group (and wait for them, unless block is false).
  void kill(bool block = true) {
    auto members = members_;
    for (auto& g : members) g.kill(false);
    if (block) joinall(members);
    prune();
  }

  // fn(item) for each item, at most `size` at once in a Pool; results in item order. The
  // first exception (in item order) is rethrown after every job has finished.
  template <class Fn, class Range>
  auto map(Fn fn, const Range& items) {
    using R = std::invoke_result_t<Fn&, const std::ranges::range_value_t<Range>&>;
    std::vector<Greenlet<R>> gs;
    for (const auto& item : items) gs.push_back(spawn(fn, item));
    joinall(gs);
    if constexpr (std::is_void_v<R>) {
      for (auto& g : gs) g.get();
    } else {
      std::vector<R> out;
      out.reserve(gs.size());
      for (auto& g : gs) out.push_back(std::move(g.get()));
      return out;
    }
  }

  // fn(item) for each item; results as they finish. Returns at once: a feeder fiber spawns
  // the jobs (waiting for slots) while the caller reads the results.
  template <class Fn, class Range>
  auto imap_unordered(Fn fn, Range items) {
    using R = std::invoke_result_t<Fn&, const std::ranges::range_value_t<Range>&>;
    static_assert(!std::is_void_v<R>, "imap_unordered needs a function that returns a value");
    UnorderedResults<R> results;
    auto q = results.q_;
    auto feeder = ringlet::spawn([this, q, fn = std::move(fn), items = std::move(items)]() mutable {
      std::vector<Greenlet<void>> jobs;
      for (const auto& item : items)
        jobs.push_back(spawn([q, &fn, item] {
          typename UnorderedResults<R>::Item out;
          try {
            out.value.emplace(fn(item));
          } catch (...) {
            out.error = std::current_exception();
          }
          q->put(std::move(out));
        }));
      joinall(jobs);
      q->close();
    });
    members_.push_back(feeder);  // a member: the group's end kills and waits for it too
    return results;
  }

 protected:
  explicit GroupBase(std::size_t limit) : limit_(limit), slots_(limit ? limit : 1) {}
  // Its fibers use the group (their slot, the feeder's `this`): kill them and wait until
  // they are gone. A kill or Timeout aimed at the fiber running this destructor is
  // deferred to its next switch point.
  ~GroupBase() { detail::kill_and_wait(members_); }
  bool limited() const noexcept { return limit_ != 0; }
  void prune() {
    std::erase_if(members_, [](const BasicGreenlet& g) { return g.ready(); });
  }

  std::size_t limit_;  // 0: no limit
  Semaphore slots_;
  std::vector<BasicGreenlet> members_;
};

// Fibers without a limit.
class Group : public GroupBase {
 public:
  Group() : GroupBase(0) {}
};

// At most `size` fibers at once.
class Pool : public GroupBase {
 public:
  explicit Pool(std::size_t size) : GroupBase(size) {
    if (size == 0) throw std::invalid_argument("ringlet::Pool: size must be at least 1");
  }
  std::size_t capacity() const noexcept { return limit_; }
};

}  // namespace ringlet
