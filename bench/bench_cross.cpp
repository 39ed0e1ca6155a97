// Cross-core wake-ups: a fiber on core 0 wakes one on core 1 and back (two Semaphores),
// and for scale the same with both fibers on core 0; a fiber on core 0 that stays busy
// (yielding) while it wakes one on core 1, again and again (cross_busy_waker, like for like
// with bench/go/cross.go's go_chan_gomaxprocs2_busy_waker, where a wake must cross Ps);
// against a pthread condition-variable ping-pong between two threads in the same binary;
// and bursts: core 0 wakes 100 fibers parked on core 1 at once. The Go channel ping-pong
// (GOMAXPROCS=2) is bench/go/cross.go. ringlet runs twice: waking by IORING_OP_MSG_RING
// (the default where the kernel has it) and by eventfd (RINGLET_MSG_RING=0).
//
//   bench_cross [--seconds S]    one result line per figure; medians of 5 runs
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ringlet/ringlet.hpp>

#include "common.hpp"

namespace {

constexpr int kRuns = 5;
double g_seconds = 0.5;
long g_spin_us = -1;

ringlet::RunOptions two_cores() {
  ringlet::RunOptions o;
  o.threads = 2;
  o.pin = true;
  o.spin_us = g_spin_us;
  return o;
}

// ns per one-way wake: a round trip is two. core 0: both fibers on one core, for scale.
double ringlet_pingpong(unsigned core) {
  return ringlet::run(
      [core] {
        ringlet::Semaphore to1{0}, to0{0};
        std::atomic<bool> stop{false};
        auto other = ringlet::spawn_on(core, [&] {
          for (;;) {
            to1.acquire();
            if (stop.load(std::memory_order_relaxed)) return;
            to0.release();
          }
        });
        long trips = 0;
        const auto t0 = bench::Clock::now();
        const auto until = t0 + std::chrono::duration<double>(g_seconds);
        auto now = t0;
        while (now < until) {
          for (int i = 0; i < 256; ++i) {
            to1.release();
            to0.acquire();
          }
          trips += 256;
          now = bench::Clock::now();
        }
        stop = true;
        to1.release();
        other.join();
        return bench::seconds(t0, now) * 1e9 / static_cast<double>(2 * trips);
      },
      two_cores());
}

// ns per wake when core 0 wakes 100 parked fibers of core 1 at once, and waits for all.
double ringlet_burst() {
  return ringlet::run(
      [] {
        constexpr int kFibers = 100;
        ringlet::Semaphore go{0};
        std::atomic<long> done{0};
        std::atomic<bool> stop{false};
        std::vector<ringlet::Greenlet<void>> fibers;
        for (int i = 0; i < kFibers; ++i)
          fibers.push_back(ringlet::spawn_on(1, [&] {
            for (;;) {
              go.acquire();
              if (stop.load(std::memory_order_relaxed)) return;
              done.fetch_add(1, std::memory_order_release);
            }
          }));
        ringlet::Event back;
        long bursts = 0;
        const auto t0 = bench::Clock::now();
        const auto until = t0 + std::chrono::duration<double>(g_seconds);
        auto now = t0;
        while (now < until) {
          go.release(kFibers);
          ++bursts;
          while (done.load(std::memory_order_acquire) < bursts * kFibers) ringlet::yield();
          now = bench::Clock::now();
        }
        stop = true;
        go.release(kFibers);
        ringlet::joinall(fibers);
        return bench::seconds(t0, now) * 1e9 / static_cast<double>(bursts * kFibers);
      },
      two_cores());
}

// ns per wake when a fiber on core 0 wakes one parked on core 1 and stays busy (yielding:
// its core's loop sends what it queued, as a busy Go P runs) until the woken one has run,
// then wakes it again. The woken fiber may not be parked yet when the next release comes
// (it just ran): that release wakes nobody. So the time is divided by the remote wakes the
// scheduler counted, not by the releases.
double ringlet_busy_waker() {
  return ringlet::run(
      [] {
        ringlet::Semaphore go{0};
        std::atomic<long> done{0};
        std::atomic<bool> stop{false};
        auto other = ringlet::spawn_on(1, [&] {
          for (long n = 1;; ++n) {
            go.acquire();
            if (stop.load(std::memory_order_relaxed)) return;
            done.store(n, std::memory_order_release);
          }
        });
        const std::uint64_t wakes0 = ringlet::stats().total.remote_wakes_sent;
        long n = 0;
        const auto t0 = bench::Clock::now();
        const auto until = t0 + std::chrono::duration<double>(g_seconds);
        auto now = t0;
        while (now < until) {
          for (int i = 0; i < 256; ++i) {
            go.release();
            ++n;
            while (done.load(std::memory_order_acquire) != n) ringlet::yield();
          }
          now = bench::Clock::now();
        }
        const std::uint64_t wakes = ringlet::stats().total.remote_wakes_sent - wakes0;
        stop = true;
        go.release();
        other.join();
        return bench::seconds(t0, now) * 1e9 / static_cast<double>(wakes ? wakes : n);
      },
      two_cores());
}

double condvar_pingpong_pinned();

void pin_self(int k) {
  cpu_set_t all, one;
  CPU_ZERO(&all);
  CPU_ZERO(&one);
  sched_getaffinity(0, sizeof all, &all);
  int seen = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &all) && seen++ == k % CPU_COUNT(&all)) CPU_SET(c, &one);
  pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

double condvar_pingpong() {
  double result = 0;
  // Two threads of their own, pinned like ringlet's two cores (this thread's mask is left
  // alone: ringlet's runs read it).
  std::thread main_side([&] {
    pin_self(0);
    result = condvar_pingpong_pinned();
  });
  main_side.join();
  return result;
}

double condvar_pingpong_pinned() {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: main's, 1: the other thread's
  bool stop = false;
  std::thread other([&] {
    pin_self(1);
    std::unique_lock lk(m);
    for (;;) {
      cv.wait(lk, [&] { return turn == 1 || stop; });
      if (stop) return;
      turn = 0;
      cv.notify_all();
    }
  });
  long trips = 0;
  const auto t0 = bench::Clock::now();
  const auto until = t0 + std::chrono::duration<double>(g_seconds);
  auto now = t0;
  {
    std::unique_lock lk(m);
    while (now < until) {
      for (int i = 0; i < 64; ++i) {
        turn = 1;
        cv.notify_all();
        cv.wait(lk, [&] { return turn == 0; });
      }
      trips += 64;
      now = bench::Clock::now();
    }
    stop = true;
    cv.notify_all();
  }
  other.join();
  return bench::seconds(t0, now) * 1e9 / static_cast<double>(2 * trips);
}

void line(const char* bench, const char* who, double ns) {
  std::printf("bench=%s impl=%s ns_per_wake=%.0f runs=%d seconds_each=%.2f\n", bench, who, ns, kRuns,
              g_seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      g_seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: bench_cross [--seconds S]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  const char* msg = std::getenv("RINGLET_MSG_RING");
  const std::string saved = msg ? msg : "";
  // The default (spin, then sleep), and sleeping at once, woken by each kind of doorbell.
  for (const char* mode : {"msg_ring", "eventfd", "msg_ring_nospin", "eventfd_nospin"}) {
    if (std::strncmp(mode, "eventfd", 7) == 0) setenv("RINGLET_MSG_RING", "0", 1);
    else if (msg) setenv("RINGLET_MSG_RING", saved.c_str(), 1);
    else unsetenv("RINGLET_MSG_RING");
    g_spin_us = std::strstr(mode, "nospin") ? 0 : -1;
    line("cross_pingpong", (std::string("ringlet_") + mode).c_str(),
         bench::median_of(kRuns, [] { return ringlet_pingpong(1); }));
    line("cross_burst100", (std::string("ringlet_") + mode).c_str(), bench::median_of(kRuns, ringlet_burst));
    line("cross_busy_waker", (std::string("ringlet_") + mode).c_str(), bench::median_of(kRuns, ringlet_busy_waker));
  }
  g_spin_us = -1;
  line("cross_pingpong", "pthread_condvar", bench::median_of(kRuns, condvar_pingpong));
  line("same_core_pingpong", "ringlet", bench::median_of(kRuns, [] { return ringlet_pingpong(0); }));
}
