// Time in ringlet: deadlines, sleeping, and scoped timeouts.
#pragma once

#include <chrono>
#include <cstdint>

namespace ringlet {

using Clock = std::chrono::steady_clock;

// An absolute point on the monotonic clock by which a blocking call must finish.
// Default-constructed, it is "never". It converts implicitly from a time point and from a
// duration (measured from the moment of conversion), so `g.join(2s)` and
// `g.join(Clock::now() + 2s)` both read naturally.
class Deadline {
 public:
  constexpr Deadline() noexcept = default;
  constexpr Deadline(Clock::time_point at) noexcept : at_(at) {}  // NOLINT: implicit by design
  template <class Rep, class Period>
  Deadline(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: implicit by design
      : at_(from_now(d)) {}

  static constexpr Deadline never() noexcept { return Deadline{}; }
  static Deadline after(Clock::duration d) noexcept { return Deadline{d}; }

  constexpr bool is_never() const noexcept { return at_ == Clock::time_point::max(); }
  constexpr Clock::time_point time() const noexcept { return at_; }
  bool passed() const noexcept { return !is_never() && Clock::now() >= at_; }
  // Time left, clamped at zero; Clock::duration::max() for "never".
  Clock::duration remaining() const noexcept;

  friend constexpr bool operator==(Deadline, Deadline) noexcept = default;
  friend constexpr auto operator<=>(Deadline a, Deadline b) noexcept { return a.at_ <=> b.at_; }

 private:
  template <class Rep, class Period>
  static Clock::time_point from_now(std::chrono::duration<Rep, Period> d) noexcept {
    // Saturate instead of overflowing: anything beyond ~30 years is "never".
    if (std::chrono::duration<double>(d).count() > 1e9) return Clock::time_point::max();
    if (d <= d.zero()) return Clock::now();
    return Clock::now() + std::chrono::ceil<Clock::duration>(d);
  }

  Clock::time_point at_ = Clock::time_point::max();
};

constexpr Deadline earliest(Deadline a, Deadline b) noexcept { return a < b ? a : b; }

// Park the calling fiber until the deadline (on a plain thread: sleep the thread).
// A switch point: throws GreenletExit if the fiber was killed and Timeout::Expired if an
// enclosing Timeout runs out first.
void sleep_until(Deadline d);
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  sleep_until(Deadline{d});
}

// Let every other ready fiber run once, then continue. A switch point (see sleep_until).
// On a plain thread it is std::this_thread::yield().
void yield();

// A scoped deadline for every blocking call made inside its scope, like gevent's
// `with Timeout(s):`. Scopes nest; the earliest deadline wins. When it runs out, the
// blocking call in progress (or the next one) throws Timeout::Expired.
//
//   try {
//     ringlet::Timeout t{2s};
//     fetch_everything();
//   } catch (const ringlet::Timeout::Expired& e) { ... }
//
// Expired deliberately does not derive from std::exception, for the reason gevent's Timeout
// derives from BaseException: a `catch (const std::exception&)` around one call must not
// swallow the timeout meant for an outer scope.
class Timeout {
 public:
  class Expired {
   public:
    Expired(const Timeout* source, Deadline deadline) noexcept
        : source_(source), deadline_(deadline) {}
    // Whether this expiry belongs to `t` (compare while `t` is still in scope).
    bool is(const Timeout& t) const noexcept { return source_ == &t; }
    Deadline deadline() const noexcept { return deadline_; }
    const char* what() const noexcept { return "ringlet::Timeout expired"; }

   private:
    const Timeout* source_;
    Deadline deadline_;
  };

  explicit Timeout(Deadline d) noexcept;
  ~Timeout();
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  Deadline deadline() const noexcept { return deadline_; }

 private:
  Deadline deadline_;
  Deadline saved_deadline_;
  const Timeout* saved_owner_;
  void* slot_;  // the fiber's (or thread's) deadline slot this scope changed
};

}  // namespace ringlet
