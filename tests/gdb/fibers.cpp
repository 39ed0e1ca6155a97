// A ringlet program for the gdb tests (tests/gdb/gdb_fibers.sh): fibers parked in accept,
// read, sleep, Lock, Queue::get and join, each from a distinctly named noinline function,
// and one fiber that never yields (running). It prints "ready" once every fiber is where
// it stays, then runs until killed (alarm() ends it if the driver dies).
//   gdb-fibers [THREADS]   THREADS=2: half of the fibers on core 1, the busy one there too
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "ringlet/net.hpp"
#include "ringlet/ringlet.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<int> parked{0};
std::atomic<bool> stop{false};
int pipe_fds[2];

// After each parking call: a compiler barrier, so that the call is not a tail call (which
// would leave the function's frame off the stack, in gdb and in any backtrace).
inline void not_a_tail_call() { asm volatile("" ::: "memory"); }

[[gnu::noinline]] void gdbtest_park_in_accept(ringlet::net::TcpListener& l) {
  parked.fetch_add(1);
  l.accept();
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_park_in_read() {
  char c;
  parked.fetch_add(1);
  ringlet::io::read(pipe_fds[0], &c, 1);
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_park_in_sleep() {
  parked.fetch_add(1);
  ringlet::sleep(1h);
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_park_in_lock(ringlet::Lock& lock) {
  parked.fetch_add(1);
  lock.acquire();
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_park_in_queue_get(ringlet::Queue<int>& q) {
  parked.fetch_add(1);
  q.get();
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_park_in_join(ringlet::BasicGreenlet g) {
  parked.fetch_add(1);
  g.join();
  not_a_tail_call();
}

[[gnu::noinline]] void gdbtest_busy_spin() {
  std::puts("ready");
  std::fflush(stdout);
  while (!stop.load(std::memory_order_relaxed)) asm volatile("" ::: "memory");
}

}  // namespace

int main(int argc, char** argv) {
  const unsigned threads = argc > 1 ? static_cast<unsigned>(std::atoi(argv[1])) : 1;
  alarm(300);
  // Yama ptrace_scope 1 lets only ancestors attach: the test's gdb is a sibling.
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return 1;
  ringlet::RunOptions opts;
  opts.threads = threads;
  opts.max_blocking_ms = 0;
  ringlet::run(
      [threads] {
        const unsigned other = threads > 1 ? 1 : 0;
        auto listener = ringlet::net::TcpListener::bind("127.0.0.1:0");
        ringlet::Lock lock;
        lock.acquire();  // held by main for good
        ringlet::Queue<int> queue;
        // Core 0: accept, read, Lock, Queue::get. The other core (or core 0): sleep, join.
        auto a = ringlet::spawn(ringlet::SpawnOptions{.name = "acceptor"},
                                [&] { gdbtest_park_in_accept(listener); });
        auto r = ringlet::spawn(ringlet::SpawnOptions{.name = "reader"}, [] { gdbtest_park_in_read(); });
        auto l = ringlet::spawn(ringlet::SpawnOptions{.name = "locker"}, [&] { gdbtest_park_in_lock(lock); });
        auto q = ringlet::spawn(ringlet::SpawnOptions{.name = "getter"},
                                [&] { gdbtest_park_in_queue_get(queue); });
        auto s = ringlet::spawn_on(other, ringlet::SpawnOptions{.name = "sleeper"},
                                   [] { gdbtest_park_in_sleep(); });
        auto j = ringlet::spawn_on(other, ringlet::SpawnOptions{.name = "joiner"},
                                   [s] { gdbtest_park_in_join(s); });
        while (parked.load() < 6) ringlet::sleep(10ms);
        ringlet::sleep(50ms);  // each is now inside its wait
        // The busy one last: on one core it holds the only thread from here on.
        auto b = ringlet::spawn_on(other, ringlet::SpawnOptions{.name = "busy"}, [] { gdbtest_busy_spin(); });
        b.join();
      },
      opts);
  return 0;
}
