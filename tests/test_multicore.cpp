// Multi-core: RunOptions::threads, spawn_on, cross-core join and kill, the primitives shared
// by fibers of two cores, wake-up bursts, how a multi-core run ends, and fork in one. Every
// case here but the fork cases ([fork]) is also run by the ThreadSanitizer build.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;
using ringlet::test::two_cores;

namespace {

// A busy-looping check that the calling fiber is on `core`, for asserting where code ran.
unsigned where() { return ringlet::this_core(); }

}  // namespace

TEST_CASE("multicore: spawn_on runs on the core asked for, and any core joins it", "[multicore]") {
  const int v = ringlet::run(
      [] {
        CHECK(ringlet::cores() == 2);
        CHECK(ringlet::this_core() == 0);
        auto g = ringlet::spawn_on(1, [] { return static_cast<int>(where()) * 10 + 2; });
        CHECK(g.get() == 12);
        // A fiber on core 1 spawns back onto core 0 and joins it from core 1.
        auto back = ringlet::spawn_on(1, [] {
          auto h = ringlet::spawn_on(0, [] { return where(); });
          return h.get() * 100 + where();
        });
        CHECK(back.get() == 1);  // 0 * 100 + 1
        // On this core, spawn_on is spawn.
        auto local = ringlet::spawn_on(0, [] { return where(); });
        CHECK(local.get() == 0u);
        return 7;
      },
      two_cores());
  CHECK(v == 7);
  CHECK(ringlet::cores() == 0);  // outside run
}

TEST_CASE("multicore: errors from spawn_on and handles across cores", "[multicore]") {
  ringlet::run(
      [] {
        CHECK_THROWS_AS(ringlet::spawn_on(2, [] {}), std::out_of_range);
        try {
          ringlet::spawn_on(5, [] {});
        } catch (const std::out_of_range& e) {
          CHECK(std::string(e.what()).find("this run has 2") != std::string::npos);
        }
        // An exception on core 1 reaches the joiner on core 0.
        auto bad = ringlet::spawn_on(1, []() -> int { throw std::runtime_error("core 1 says no"); });
        CHECK_THROWS_WITH(bad.get(), "core 1 says no");
        // A deadline on a cross-core join.
        auto slow = ringlet::spawn_on(1, [] { ringlet::sleep(300ms); });
        CHECK_FALSE(slow.join(ringlet::Deadline::after(20ms)));
        CHECK_FALSE(slow.ready());
        CHECK(slow.join());
        CHECK(slow.ready());
        // wait() on fibers of both cores.
        std::vector<ringlet::Greenlet<void>> gs;
        gs.push_back(ringlet::spawn_on(0, [] { ringlet::sleep(5ms); }));
        gs.push_back(ringlet::spawn_on(1, [] { ringlet::sleep(10ms); }));
        CHECK(ringlet::wait(gs).size() == 2);
      },
      two_cores());
  // Outside any run, spawn_on is an error, not a crash.
  CHECK_THROWS_AS(ringlet::spawn_on(0, [] {}), std::logic_error);
}

TEST_CASE("multicore: kill a fiber on another core", "[multicore]") {
  ringlet::run(
      [] {
        std::atomic<bool> cleaned{false};
        ringlet::Event never;
        auto victim = ringlet::spawn_on(1, [&] {
          try {
            never.wait();
          } catch (const ringlet::GreenletExit&) {
            cleaned = true;
            throw;
          }
        });
        ringlet::sleep(10ms);
        CHECK_FALSE(victim.ready());
        CHECK(victim.kill());  // blocks until it has ended, across cores
        CHECK(victim.ready());
        CHECK(cleaned.load());
        CHECK_THROWS_AS(victim.get(), ringlet::GreenletExit);
        // And the other way: core 1 kills a sleeper on core 0.
        auto sleeper = ringlet::spawn([] { ringlet::sleep(10s); });
        auto killer = ringlet::spawn_on(1, [sleeper] { return sleeper.kill(); });
        CHECK(killer.get());
        CHECK(sleeper.ready());
      },
      two_cores());
}

TEST_CASE("multicore: threads = 0 means one scheduler per CPU of the affinity mask", "[multicore]") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  const unsigned cpus = static_cast<unsigned>(CPU_COUNT(&set));
  ringlet::RunOptions o;
  o.threads = 0;
  o.pin = true;
  ringlet::run(
      [cpus] {
        CHECK(ringlet::cores() == cpus);
        std::vector<ringlet::Greenlet<unsigned>> gs;
        for (unsigned c = 0; c < ringlet::cores(); ++c) gs.push_back(ringlet::spawn_on(c, [] { return where(); }));
        for (unsigned c = 0; c < gs.size(); ++c) CHECK(gs[c].get() == c);
      },
      o);
}

TEST_CASE("multicore: a Lock shared by fibers of two cores keeps its critical section whole",
          "[multicore][stress]") {
  ringlet::run(
      [] {
        ringlet::Lock lock;
        std::int64_t counter = 0;     // plain: only ever touched under the lock
        int inside = 0;               // likewise; more than one holder would show here
        std::atomic<int> overlaps{0};
        const auto until = ringlet::Deadline::after(400ms);
        auto worker = [&](unsigned seed) {
          std::minstd_rand rng(seed);
          std::int64_t mine = 0;
          while (!until.passed()) {
            std::lock_guard guard(lock);
            if (++inside != 1) ++overlaps;
            ++counter;
            ++mine;
            if (rng() % 4 == 0) ringlet::yield();  // hold it across a switch now and then
            --inside;
          }
          return mine;
        };
        std::vector<ringlet::Greenlet<std::int64_t>> gs;
        for (unsigned i = 0; i < 8; ++i) gs.push_back(ringlet::spawn_on(i % 2, worker, i + 1));
        std::int64_t total = 0;
        for (auto& g : gs) total += g.get();
        CHECK(overlaps.load() == 0);
        CHECK(counter == total);
        CHECK(total > 100);
      },
      two_cores());
}

TEST_CASE("multicore: a Queue between cores delivers every item exactly once", "[multicore][stress]") {
  ringlet::run(
      [] {
        ringlet::Queue<int> q{16};  // bounded: putters park too
        constexpr int kProducers = 4, kConsumers = 4, kPer = 5000;
        std::vector<ringlet::Greenlet<void>> producers;
        for (int p = 0; p < kProducers; ++p)
          producers.push_back(ringlet::spawn_on(p % 2, [&q, p] {
            std::minstd_rand rng(p);
            for (int i = 0; i < kPer; ++i) {
              q.put(p * kPer + i);
              if (rng() % 16 == 0) ringlet::yield();
            }
          }));
        std::vector<ringlet::Greenlet<std::vector<int>>> consumers;
        for (int c = 0; c < kConsumers; ++c)
          consumers.push_back(ringlet::spawn_on((c + 1) % 2, [&q] {
            std::vector<int> got;
            while (auto v = q.get()) got.push_back(*v);
            return got;
          }));
        ringlet::joinall(producers);
        q.close();
        std::vector<int> all;
        for (auto& c : consumers) {
          auto got = std::move(c.get());
          // Each producer's items reach any one consumer in the order they were put.
          std::vector<int> last(kProducers, -1);
          for (int v : got) {
            CHECK(v > last[v / kPer]);
            last[v / kPer] = v;
          }
          all.insert(all.end(), got.begin(), got.end());
        }
        std::sort(all.begin(), all.end());
        REQUIRE(all.size() == static_cast<std::size_t>(kProducers * kPer));
        for (int i = 0; i < kProducers * kPer; ++i)
          if (all[i] != i) FAIL("item " << i << " lost or duplicated");
      },
      two_cores());
}

TEST_CASE("multicore: Events hand a baton between cores", "[multicore][stress]") {
  ringlet::run(
      [] {
        ringlet::Event ping, pong;
        constexpr int kRounds = 2000;
        std::atomic<int> seen{0};
        auto other = ringlet::spawn_on(1, [&] {
          for (int i = 0; i < kRounds; ++i) {
            REQUIRE(ping.wait(ringlet::Deadline::after(5s)));
            ping.clear();
            seen.fetch_add(1, std::memory_order_relaxed);
            pong.set();
          }
        });
        for (int i = 0; i < kRounds; ++i) {
          ping.set();
          REQUIRE(pong.wait(ringlet::Deadline::after(5s)));
          pong.clear();
          REQUIRE(seen.load() == i + 1);
        }
        other.get();
      },
      two_cores());
}

TEST_CASE("multicore: a sleeping core is woken at once, while the waker computes on", "[multicore]") {
  // Core 1's fiber waits; core 1 runs out of work and sleeps. Main sets the Event and then
  // computes without a switch: the woken fiber must run meanwhile, as a woken OS thread does.
  // (The io_uring engine's cross-core message used to leave with the waker's next submission,
  // that is at its next switch: here, never while main computed.)
  ringlet::run(
      [] {
        ringlet::Event go;
        std::atomic<bool> ran{false};
        auto other = ringlet::spawn_on(1, [&] {
          REQUIRE(go.wait(ringlet::Deadline::after(10s)));
          ran.store(true, std::memory_order_release);
        });
        ringlet::sleep(100ms);  // core 1 parks its fiber, spins, then sleeps
        go.set();
        const auto until = std::chrono::steady_clock::now() + 5s;
        while (!ran.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
        }
        CHECK(ran.load());  // before main gave its core up
        other.get();
      },
      two_cores());
}

TEST_CASE("multicore: 100 000 cross-core wake-ups lose nothing", "[multicore][stress]") {
  ringlet::run(
      [] {
        constexpr int kWaiters = 100, kBursts = 1000;  // 100 000 wake-ups
        ringlet::Semaphore permits{0};
        std::atomic<int> taken{0};
        std::vector<ringlet::Greenlet<void>> waiters;
        for (int i = 0; i < kWaiters; ++i)
          waiters.push_back(ringlet::spawn_on(1, [&] {
            for (int k = 0; k < kBursts; ++k) {
              permits.acquire();
              taken.fetch_add(1, std::memory_order_relaxed);
            }
          }));
        // Bursts of 100 releases from core 0, each waking the 100 fibers parked on core 1;
        // the next burst waits until every one of them has taken its permit and parked again.
        const auto until = ringlet::Deadline::after(60s);
        for (int b = 0; b < kBursts; ++b) {
          permits.release(kWaiters);
          while (taken.load(std::memory_order_relaxed) < (b + 1) * kWaiters && !until.passed())
            ringlet::yield();
        }
        REQUIRE(ringlet::joinall(waiters, until));
        CHECK(taken.load() == kWaiters * kBursts);
        CHECK(permits.value() == 0);
      },
      two_cores());
}

TEST_CASE("multicore: run ends when main and every non-daemon fiber are done; daemons are killed",
          "[multicore]") {
  std::atomic<int> finished{0}, daemons_killed{0};
  const auto t0 = std::chrono::steady_clock::now();
  ringlet::run(
      [&] {
        auto forever = std::make_shared<ringlet::Event>();
        for (unsigned core = 0; core < 2; ++core) {
          // Non-daemons: run() waits for these, on both cores.
          ringlet::spawn_on(core, [&] {
            ringlet::sleep(50ms);
            ++finished;
          });
          // Daemons parked on every core: killed when the rest is done.
          for (int i = 0; i < 3; ++i)
            ringlet::spawn_on(core, ringlet::SpawnOptions{.daemon = true}, [&, forever] {
              try {
                forever->wait();
              } catch (const ringlet::GreenletExit&) {
                ++daemons_killed;
                throw;
              }
            });
        }
      },
      two_cores());
  CHECK(finished.load() == 2);
  CHECK(daemons_killed.load() == 6);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("multicore: main's exception and another core's deadlock reach the caller", "[multicore]") {
  CHECK_THROWS_WITH(ringlet::run(
                        [] {
                          ringlet::spawn_on(1, [] { ringlet::sleep(20ms); });
                          throw std::runtime_error("main failed");
                        },
                        two_cores()),
                    "main failed");
  // Two fibers on core 1 that join each other: core 1 finds the deadlock, kills them, and
  // run() says so.
  CHECK_THROWS_AS(ringlet::run(
                      [] {
                        ringlet::spawn_on(1, [] {
                          auto self = std::make_shared<ringlet::Greenlet<void>>();
                          auto a = ringlet::spawn([self] { self->join(); });
                          *self = ringlet::spawn([a] { a.join(); });
                          a.join();
                        });
                      },
                      two_cores()),
                  ringlet::DeadlockError);
}


TEST_CASE("multicore: many runs start and stop cleanly", "[multicore]") {
  for (int i = 0; i < 20; ++i) {
    const unsigned got = ringlet::run([] { return ringlet::spawn_on(1, [] { return where(); }).get(); },
                                      two_cores());
    CHECK(got == 1u);
  }
}

TEST_CASE("multicore: StreamServer serves on every core, with one connection limit and one stop",
          "[multicore][net]") {
  for (auto spread : {ringlet::net::Spread::ReusePort, ringlet::net::Spread::Handoff}) {
    INFO((spread == ringlet::net::Spread::ReusePort ? "reuseport" : "handoff"));
    ringlet::run(
        [spread] {
          std::atomic<int> per_core[2] = {0, 0};
          std::atomic<int> running{0}, most{0};
          ringlet::Event release;  // handlers hold their connection until this is set
          ringlet::net::ServerOptions opts;
          opts.spread = spread;
          opts.max_connections = 3;
          ringlet::net::StreamServer server{
              "127.0.0.1:0",
              [&](ringlet::net::TcpStream& c) {
                ++per_core[ringlet::this_core()];
                const int now = ++running;
                int m = most.load();
                while (now > m && !most.compare_exchange_weak(m, now)) {
                }
                char b[1];
                c.read_some(b, ringlet::Deadline::after(5s));
                c.write_all("k");
                release.wait(ringlet::Deadline::after(5s));
                --running;
              },
              opts};
          server.start();
          CHECK(server.cores() == 2);
          const std::string addr = server.address().to_string();
          // 40 clients from both cores; at most 3 handlers at once across the cores.
          std::vector<ringlet::Greenlet<bool>> clients;
          for (int i = 0; i < 40; ++i)
            clients.push_back(ringlet::spawn_on(i % 2, [addr] {
              auto c = ringlet::net::TcpStream::connect(addr, 5s);
              c.write_all("x");
              char b[1];
              return c.read_some(b, ringlet::Deadline::after(10s)) == 1;
            }));
          // Let the handlers go in groups while the clients queue in the backlog.
          for (int i = 0; i < 200 && server.stats().accepted < 40; ++i) {
            ringlet::sleep(5ms);
            release.set();
            ringlet::sleep(1ms);
            release.clear();
          }
          release.set();
          for (auto& c : clients) CHECK(c.get());
          CHECK(most.load() <= 3);
          CHECK(server.stats().accepted == 40);
          CHECK(per_core[0].load() + per_core[1].load() == 40);
          CHECK(per_core[0].load() > 0);
          CHECK(per_core[1].load() > 0);
          // Handlers parked on both cores when stop() comes: grace, then killed.
          release.clear();
          std::vector<ringlet::net::TcpStream> open;
          for (int i = 0; i < 2; ++i) {
            open.push_back(ringlet::net::TcpStream::connect(addr, 5s));
            open.back().write_all("y");
            char b[1];
            REQUIRE(open.back().read_some(b, ringlet::Deadline::after(5s)) == 1);
          }
          const auto t0 = ringlet::Clock::now();
          server.stop(50ms);
          const double took = ringlet::test::seconds_since(t0);
          CHECK(took >= 0.04);
          CHECK(took < 2.0);
          CHECK(server.stats().active == 0);
          CHECK_FALSE(server.serving());
          for (auto& c : open) {
            char b[1];
            CHECK(c.read_some(b, ringlet::Deadline::after(5s)) == 0);  // closed by the kill
          }
        },
        two_cores());
  }
}

TEST_CASE("multicore: closing a socket on one core ends a read waiting on another", "[multicore][net]") {
  ringlet::run(
      [] {
        auto listener = ringlet::net::TcpListener::bind("127.0.0.1:0");
        auto client = ringlet::net::TcpStream::connect(listener.local_address(), 5s);
        auto served = listener.accept(ringlet::Deadline::after(5s));
        // A fiber of core 1 reads from `client`; the peer never writes.
        auto reader = ringlet::spawn_on(1, [&client] {
          char b[16];
          std::error_code ec;
          const std::size_t n = client.read_some(b, ringlet::Deadline::after(10s), ec);
          return std::make_pair(n, ec);
        });
        ringlet::sleep(20ms);
        CHECK_FALSE(reader.ready());
        const auto t0 = ringlet::Clock::now();
        client.close();  // here, on core 0
        auto [n, ec] = reader.get();
        CHECK(n == 0);
        CHECK(ec == std::errc::bad_file_descriptor);
        CHECK(ringlet::test::seconds_since(t0) < 2.0);
      },
      two_cores());
}

TEST_CASE("multicore: an absurd thread count is a clear error, and the thread can run again",
          "[multicore]") {
  ringlet::RunOptions o;
  o.threads = 5000;
  try {
    ringlet::run([] {}, o);
    FAIL("run accepted 5000 threads");
  } catch (const std::invalid_argument& e) {
    CHECK_THAT(e.what(), Catch::Contains("RunOptions::threads = 5000"));
  }
  CHECK(ringlet::run([] { return ringlet::cores(); }, two_cores()) == 2u);
}

TEST_CASE("multicore: a listener without SO_REUSEPORT is served by one acceptor handing off",
          "[multicore][net]") {
  ringlet::run(
      [] {
        std::atomic<int> per_core[2] = {0, 0};
        ringlet::net::ServerOptions opts;
        opts.spread = ringlet::net::Spread::ReusePort;
        ringlet::net::StreamServer server{ringlet::net::TcpListener::bind("127.0.0.1:0"),  // no reuse_port
                                          [&](ringlet::net::TcpStream& c) {
                                            ++per_core[ringlet::this_core()];
                                            c.write_all("k");
                                          },
                                          opts};
        server.start();
        CHECK(server.cores() == 2);
        for (int i = 0; i < 6; ++i) {
          auto c = ringlet::net::TcpStream::connect(server.address(), 5s);
          char b[1];
          CHECK(c.read_some(b, ringlet::Deadline::after(5s)) == 1);
        }
        server.stop(1s);
        CHECK(per_core[0].load() == 3);  // dealt out in turn
        CHECK(per_core[1].load() == 3);
      },
      two_cores());
}

TEST_CASE("multicore: a connection whose handler cannot start on its core gives its place back",
          "[multicore][net]") {
  ringlet::run(
      [] {
        ringlet::net::ServerOptions opts;
        opts.spread = ringlet::net::Spread::Handoff;
        opts.max_connections = 2;
        opts.stack_size = std::size_t{1} << 47;  // 128 TiB: beyond the address space, no core can map it
        ringlet::net::StreamServer server{"127.0.0.1:0", [](ringlet::net::TcpStream&) { FAIL("ran"); }, opts};
        server.start();
        // Six connections, dealt to both cores: each is dropped (closed) and its slot given
        // back, so the limit of 2 never stops the server from taking the next.
        for (int i = 0; i < 6; ++i) {
          auto c = ringlet::net::TcpStream::connect(server.address(), 5s);
          char b[1];
          std::error_code ec;
          CHECK(c.read_some(b, ringlet::Deadline::after(5s), ec) == 0);  // closed, not timed out
          CHECK(ec != std::errc::timed_out);
        }
        for (int i = 0; i < 100 && server.stats().active != 0; ++i) ringlet::sleep(5ms);
        CHECK(server.stats().accepted == 6);
        CHECK(server.stats().active == 0);
        server.stop(1s);
      },
      two_cores());
}

namespace {

// The parent's side of a fork in a test: waits (from a fiber, without blocking its core) for
// the child to end; a child still there after 10 s is killed and reported as hung (-1).
int wait_child(pid_t pid) {
  int status = 0;
  for (int i = 0; i < 2000; ++i) {
    const pid_t got = ::waitpid(pid, &status, WNOHANG);
    if (got == pid) return status;
    if (got < 0) return -2;
    ringlet::sleep(5ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// In a forked child: what single-core means there. 0 if all holds, else which check failed.
int child_run_is_single_core() {
  if (ringlet::cores() != 1) return 2;
  if (ringlet::this_core() != 0) return 3;
  auto h = ringlet::spawn([] {
    ringlet::sleep(5ms);  // a timer on the child's own engine
    return 40;
  });
  if (h.get() != 40) return 4;
  try {
    ringlet::spawn_on(1, [] {});  // the parent's other core is not in the child
    return 5;
  } catch (const std::out_of_range&) {
  }
  if (ringlet::spawn_on(0, [] { return where(); }).get() != 0u) return 6;  // core 0: this one
  return 0;
}

}  // namespace

TEST_CASE("multicore: a forked child's run is single-core, and ends when its last fiber does",
          "[multicore][fork]") {
  // A fiber on core 1 forks while core 0 is busy with fibers of its own: in the child the
  // caller's scheduler is the run's only core; when the forking fiber (its only fiber)
  // returns, the child's run ends, and with its only thread the child, with status 0.
#if defined(__SANITIZE_ADDRESS__)
  // The child ends as its last thread returns, which runs LeakSanitizer's exit check there:
  // the child has no main thread, so what only main's stack held (Catch's own objects) is
  // reported as leaked and the status is LSan's, not the run's.
  RINGLET_SKIP("LeakSanitizer checks a child that ends through its last (non-main) thread and takes what main's stack held for leaks");
#endif
  std::fflush(nullptr);  // the child ends through exit(): nothing of ours twice
  const int status = ringlet::run(
      [] {
        ringlet::Event stop;
        auto busy = ringlet::spawn([&] {
          while (!stop.wait(ringlet::Deadline::after(1ms))) {
          }
        });
        auto forker = ringlet::spawn_on(1, [] {
          const pid_t pid = ::fork();
          if (pid < 0) return -3;
          if (pid == 0) {
            if (const int bad = child_run_is_single_core()) ::_exit(bad);
            return 0;  // the child's last fiber: its run ends here
          }
          return wait_child(pid);
        });
        const int st = forker.get();
        stop.set();
        busy.join();
        return st;
      },
      two_cores());
  INFO("status " << status << " (-1: the child hung and was killed)");
  REQUIRE(status >= 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("multicore: a fork on core 0 while core 1 runs: run() returns in the child",
          "[multicore][fork]") {
  // main forks while a fiber on core 1 is parked: the child's run is core 0 alone, ends when
  // main's fiber returns, and run() returns there without waiting for core 1.
  const pid_t parent = ::getpid();
  std::fflush(nullptr);
  const int got = ringlet::run(
      [] {
        ringlet::Event go;
        auto parked = ringlet::spawn_on(1, [&] { go.wait(); });
        ringlet::sleep(5ms);  // core 1's fiber is parked by now
        const pid_t pid = ::fork();
        if (pid < 0) return -3;
        if (pid == 0) return child_run_is_single_core() + 100;  // the child's run ends here
        go.set();
        parked.join();
        return wait_child(pid);
      },
      two_cores());
  if (::getpid() != parent) ::_exit(got == 100 ? 0 : got);  // the child, after its run()
  INFO("status " << got << " (-1: the child hung and was killed)");
  REQUIRE(got >= 0);
  CHECK(WIFEXITED(got));
  CHECK(WEXITSTATUS(got) == 0);
}
