// A scheduler's inbox: what other threads hand it. Fibers they woke go on a lock-free stack
// (one compare-and-swap a wake; the loop takes it whole); tasks, spawns and calls go in
// vectors under a spin lock, never a std::mutex (where libc's pthread mutexes are
// interposed, that would be a hooked mutex, and a fiber holding it could park). The loop
// swaps each vector with an empty one it owns, so a burst allocates nothing once grown.
// The posting and draining code is the scheduler's (remote.cpp).
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/detail/waiter.hpp"
#include "ringlet/fiber.hpp"

namespace ringlet::detail {

struct Inbox {
  struct Spawn {
    Fiber* fiber;
    SpawnOptions opts;
  };
  std::atomic<Fiber*> woken{nullptr};  // fibers woken from other threads (a stack)
  SpinLock mu;                         // guards the three below
  std::vector<std::function<void()>> tasks;
  std::vector<Spawn> spawns;
  std::vector<std::function<void()>> calls;
  // Owned by the loop; swapped with the above.
  std::vector<std::function<void()>> tasks_drain;
  std::vector<Spawn> spawns_drain;
  std::vector<std::function<void()>> calls_drain;
  std::atomic<bool> pending{false};  // tasks, spawns or calls are waiting
  // Set while the loop sleeps in the reactor, or is about to: a poster rings only then
  // (paired seq_cst with `pending`, so either the loop sees the post or the poster sees
  // the sleeper).
  std::atomic<bool> sleeping{false};
};

}  // namespace ringlet::detail
