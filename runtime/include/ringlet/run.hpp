// Running a scheduler: ringlet::run.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/fiber.hpp"

namespace ringlet {

enum class Backend { Auto, IoUring, Epoll };

struct RunOptions {
  // Engine. Auto: io_uring, else epoll (said once on stderr). RINGLET_BACKEND=epoll|io_uring
  // in the environment overrides Auto.
  Backend backend = Backend::Auto;
  // Default stack size for fibers of this scheduler; 0 = RINGLET_STACK_SIZE or 64 KiB.
  std::size_t stack_size = 0;
  // The blocking monitor (gevent's max_blocking_time): report on stderr, with its name and
  // a backtrace, any fiber that runs this long without switching, starving the others,
  // and whether its thread was computing or blocked in the kernel meanwhile.
  // Milliseconds; 0 = off; -1 = RINGLET_MAX_BLOCKING_MS from the environment, else off.
  long max_blocking_ms = -1;
  // Scheduler threads, one scheduler and one ring each (thread-per-core). 1: everything
  // runs on the calling thread. N > 1: the calling thread is core 0 and runs main; N-1
  // more threads are started, reached with spawn_on(). 0: one per CPU the process may run
  // on (its affinity mask).
  unsigned threads = 1;
  // Pin scheduler k to the k-th CPU of the process's affinity mask (wrapping around).
  bool pin = false;
  // threads > 1: how long a core with nothing in flight keeps looking for another core's
  // wake-up before it sleeps in the kernel (µs; spinning stops by itself while it finds
  // nothing). -1 = RINGLET_SPIN_US, else 20; 0 = never spin.
  long spin_us = -1;
  // When every fiber waits and nothing can wake one. false: a deadlock, broken (below).
  // true: wait on, as threads would, until a signal handler or another thread wakes one
  // (ringlet-run sets it: a program whose threads all wait, for a signal say, waits); unless
  // one of the waits is one a signal handler may end (WaitSpec::signal_wakeable), the
  // deadlock is said once on stderr, and RINGLET_DEADLOCK=abort aborts the process instead.
  bool deadlock_waits = false;
  // The fiber dump (ringlet/dump.hpp) on a signal, as the JVM's kill -3: written to stderr, or
  // appended to the file RINGLET_DUMP_FILE names, and the program keeps running. -1 =
  // RINGLET_DUMP_SIGNAL from the environment (QUIT, SIGUSR2, a number; 0 or off: none), else
  // SIGQUIT; 0 = off. Installed only if the signal's disposition is SIG_DFL when the run
  // starts (a program's own handler is never replaced); put back when the last run ends.
  int dump_signal = -1;
};

// Every fiber is parked, nothing is in flight and no timer is pending: nothing can ever
// wake them (gevent's "This operation would block forever"). The message names each parked
// fiber and what it waits on. Thrown into the main fiber at its blocking call if it is one
// of them, else out of run().
class DeadlockError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
class Scheduler;
struct CoreGroup;
class RunHost {
 public:
  explicit RunHost(const RunOptions& opts);
  ~RunHost();
  RunHost(const RunHost&) = delete;
  RunHost& operator=(const RunHost&) = delete;
  // Runs `main` as the main fiber until it and every non-daemon fiber are done.
  void run(Fiber* main);

 private:
  void start_cores(const RunOptions& opts, unsigned n, const std::vector<int>& cpus);
  void shutdown(bool abort_run) noexcept;  // stop and join the other cores' threads
  void release_all() noexcept;             // shutdown, the scheduler, the caller's CPU mask
  Scheduler* sched_ = nullptr;
  CoreGroup* group_ = nullptr;  // threads > 1: every core's scheduler
  void* host_ = nullptr;    // threads > 1: the threads that run them (fiber.cpp)
  void* saved_affinity_ = nullptr;  // pin: the calling thread's mask, put back at the end
  int dump_signal_ = 0;  // the dump signal this run installed or shares (0: none)
};
}  // namespace detail

// Run fn as the main fiber of a new scheduler on this thread. Returns when fn and every
// non-daemon fiber (on every core, with threads > 1) have finished; daemons are then
// killed and every scheduler stopped and joined. Returns fn's value or rethrows its
// exception; a DeadlockError or a scheduler that could not start on another core is
// thrown from here too.
template <class Fn>
auto run(Fn&& fn, const RunOptions& opts = {}) {
  using R = std::invoke_result_t<std::decay_t<Fn>&&>;
  Greenlet<R> g;
  {
    detail::RunHost host{opts};  // first: if no scheduler can start, no fiber was made
    auto* f = detail::make_fiber(std::forward<Fn>(fn));
    f->name = "main";
    g = Greenlet<R>{f};
    host.run(f);
  }
  if constexpr (std::is_void_v<R>) {
    g.get();
  } else {
    return std::move(g.get());
  }
}

// Name of the engine of the calling thread's scheduler ("io_uring" or "epoll"), or "none".
const char* engine();

}  // namespace ringlet
