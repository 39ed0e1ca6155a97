// The thread group in-process: pthread_create on a fiber starts a fiber, and the pthread
// and C++ synchronisation objects work between such "threads", between them and real
// threads, and report the answers POSIX gives (EBUSY, EDEADLK, EPERM, ETIMEDOUT...). Each
// test also checks that no OS thread was created and that the scheduler kept running other
// fibers while a "thread" waited.
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "helpers.hpp"
#include "patch_helpers.hpp"
#include "ringlet/patch.hpp"
#include "ringlet/thread_pool.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::kFibers;
using ringlet::test::os_threads;
using ringlet::test::Ticker;
using ringlet::test::seconds_since;
namespace patch = ringlet::patch;

namespace {

timespec abs_in(clockid_t clock, std::chrono::nanoseconds d) {
  timespec ts{};
  clock_gettime(clock, &ts);
  const long long ns = ts.tv_nsec + d.count();
  ts.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

}  // namespace

TEST_CASE("threads: std::thread, std::mutex and std::condition_variable run as fibers", "[patch][thread]") {
  in_scheduler([] {
    const int threads_before = os_threads();
    Ticker ticker;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<int> q;
    bool done = false;
    std::vector<int> got;
    std::thread::id producer_id, consumer_id;
    constexpr int kItems = 20000;
    const auto t0 = std::chrono::steady_clock::now();
    std::thread consumer([&] {
      consumer_id = std::this_thread::get_id();
      std::unique_lock lk(mu);
      for (;;) {
        cv.wait(lk, [&] { return !q.empty() || done; });
        while (!q.empty()) {
          got.push_back(q.front());
          q.pop_front();
        }
        if (done) break;
      }
    });
    std::thread producer([&] {
      producer_id = std::this_thread::get_id();
      for (int i = 0; i < kItems; ++i) {
        {
          std::lock_guard g(mu);
          q.push_back(i);
        }
        cv.notify_one();
        if (i % 1000 == 0) std::this_thread::sleep_for(1ms);  // the patched nanosleep parks
      }
      {
        std::lock_guard g(mu);
        done = true;
      }
      cv.notify_all();
    });
    if (kFibers) CHECK(os_threads() == threads_before);  // fibers, not OS threads
    producer.join();
    consumer.join();
    REQUIRE(got.size() == kItems);
    for (int i = 0; i < kItems; ++i) REQUIRE(got[i] == i);
    CHECK(producer_id != consumer_id);
    CHECK(producer_id != std::this_thread::get_id());
    CHECK(ticker.ticks.load() >= 1);
    CHECK(seconds_since(t0) < 5.0);
  });
}

TEST_CASE("threads: condition variable timed waits on both clocks", "[patch][thread]") {
  in_scheduler([] {
    Ticker ticker;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_t mono;
    REQUIRE(pthread_cond_init(&mono, &ca) == 0);
    pthread_cond_t real = PTHREAD_COND_INITIALIZER;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

    // Nobody signals: ETIMEDOUT after about 80 ms, the mutex held again, other fibers ran.
    for (pthread_cond_t* c : {&mono, &real}) {
      const int before = ticker.ticks.load();
      const clockid_t clock = c == &mono ? CLOCK_MONOTONIC : CLOCK_REALTIME;
      pthread_mutex_lock(&mu);
      const auto t0 = std::chrono::steady_clock::now();
      timespec at = abs_in(clock, 80ms);
      CHECK(pthread_cond_timedwait(c, &mu, &at) == ETIMEDOUT);
      const double took = seconds_since(t0);
      CHECK(took >= 0.075);
      CHECK(took < 1.0);
      CHECK(pthread_mutex_trylock(&mu) == EBUSY);  // still ours
      pthread_mutex_unlock(&mu);
      CHECK(ticker.ticks.load() > before + 5);
    }

    // Signalled by another thread before the deadline: 0.
    bool flag = false;
    pthread_t t;
    struct Ctx {
      pthread_mutex_t* mu;
      pthread_cond_t* c;
      bool* flag;
    } ctx{&mu, &mono, &flag};
    pthread_mutex_lock(&mu);
    REQUIRE(pthread_create(&t, nullptr, [](void* p) -> void* {
      auto* c = static_cast<Ctx*>(p);
      usleep(20'000);
      pthread_mutex_lock(c->mu);
      *c->flag = true;
      pthread_cond_signal(c->c);
      pthread_mutex_unlock(c->mu);
      return nullptr;
    }, &ctx) == 0);
    timespec at = abs_in(CLOCK_MONOTONIC, 5s);
    int rc = 0;
    while (!flag && rc == 0) rc = pthread_cond_timedwait(&mono, &mu, &at);
    CHECK(rc == 0);
    CHECK(flag);
    pthread_mutex_unlock(&mu);
    CHECK(pthread_join(t, nullptr) == 0);

    // clockwait (libstdc++'s wait_until on steady_clock) and a bad timespec.
    pthread_mutex_lock(&mu);
    at = abs_in(CLOCK_MONOTONIC, 30ms);
    CHECK(pthread_cond_clockwait(&real, &mu, CLOCK_MONOTONIC, &at) == ETIMEDOUT);
    at.tv_nsec = 2'000'000'000;
    CHECK(pthread_cond_timedwait(&real, &mu, &at) == EINVAL);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&mono);
    pthread_condattr_destroy(&ca);
  });
}

TEST_CASE("threads: recursive and error-checking mutexes, trylock and timedlock", "[patch][thread]") {
  in_scheduler([] {
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_t rec;
    REQUIRE(pthread_mutex_init(&rec, &ma) == 0);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_t chk;
    REQUIRE(pthread_mutex_init(&chk, &ma) == 0);
    pthread_mutex_t rec_static = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

    for (pthread_mutex_t* m : {&rec, &rec_static}) {
      CHECK(pthread_mutex_lock(m) == 0);
      CHECK(pthread_mutex_lock(m) == 0);
      CHECK(pthread_mutex_trylock(m) == 0);
      // Another thread sees it held until the third unlock.
      std::atomic<int> other{-1};
      std::thread([&] { other = pthread_mutex_trylock(m); }).join();
      CHECK(other.load() == EBUSY);
      CHECK(pthread_mutex_unlock(m) == 0);
      CHECK(pthread_mutex_unlock(m) == 0);
      std::thread([&] { other = pthread_mutex_trylock(m); }).join();
      CHECK(other.load() == EBUSY);
      CHECK(pthread_mutex_unlock(m) == 0);
      CHECK(pthread_mutex_unlock(m) == EPERM);  // not held any more
      std::thread([&] {
        other = pthread_mutex_trylock(m);
        if (other == 0) pthread_mutex_unlock(m);
      }).join();
      CHECK(other.load() == 0);
    }

    CHECK(pthread_mutex_lock(&chk) == 0);
    CHECK(pthread_mutex_lock(&chk) == EDEADLK);
    CHECK(pthread_mutex_trylock(&chk) == EBUSY);
    std::atomic<int> unlock_other{-1}, timed{-1};
    std::thread([&] {
      unlock_other = pthread_mutex_unlock(&chk);  // not the owner
      timespec at = abs_in(CLOCK_REALTIME, 50ms);
      timed = pthread_mutex_timedlock(&chk, &at);
    }).join();
    CHECK(unlock_other.load() == EPERM);
    CHECK(timed.load() == ETIMEDOUT);
    CHECK(pthread_mutex_destroy(&chk) == EBUSY);
    CHECK(pthread_mutex_unlock(&chk) == 0);
    CHECK(pthread_mutex_unlock(&chk) == EPERM);

    // A contended normal mutex: a holder that sleeps makes the waiter park, not spin.
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    Ticker ticker;
    std::atomic<bool> held{false};
    std::thread holder([&] {
      pthread_mutex_lock(&mu);
      held = true;
      usleep(60'000);
      pthread_mutex_unlock(&mu);
    });
    while (!held) ringlet::sleep(1ms);
    const int before = ticker.ticks.load();
    CHECK(pthread_mutex_lock(&mu) == 0);
    CHECK(ticker.ticks.load() > before + 3);
    pthread_mutex_unlock(&mu);
    holder.join();
    CHECK(pthread_mutex_destroy(&rec) == 0);
    pthread_mutexattr_destroy(&ma);
  });
}

namespace {
std::atomic<int> g_dtor_calls{0};
std::atomic<long> g_dtor_sum{0};
std::atomic<int> g_once_runs{0};
pthread_once_t g_once = PTHREAD_ONCE_INIT;
}  // namespace

TEST_CASE("threads: keys with destructors, pthread_once, exit values, detach, self", "[patch][thread]") {
  in_scheduler([] {
    const int threads_before = os_threads();
    pthread_key_t key;
    REQUIRE(pthread_key_create(&key, [](void* v) {
      ++g_dtor_calls;
      g_dtor_sum += reinterpret_cast<long>(v);
    }) == 0);
    CHECK(pthread_setspecific(key, reinterpret_cast<void*>(1000)) == 0);  // the main fiber's own

    struct Arg {
      pthread_key_t key;
      long n;
      pthread_t self;
    };
    std::vector<Arg> args(5);
    std::vector<pthread_t> ts(5);
    for (int i = 0; i < 5; ++i) {
      args[i] = Arg{key, i + 1, {}};
      REQUIRE(pthread_create(&ts[i], nullptr, [](void* p) -> void* {
        auto* a = static_cast<Arg*>(p);
        a->self = pthread_self();
        if (pthread_getspecific(a->key) != nullptr) return reinterpret_cast<void*>(-1);
        pthread_setspecific(a->key, reinterpret_cast<void*>(a->n));
        pthread_once(&g_once, [] {
          usleep(20'000);  // parks: the other threads reach pthread_once meanwhile
          ++g_once_runs;
        });
        usleep(5'000);
        if (pthread_getspecific(a->key) != reinterpret_cast<void*>(a->n)) return reinterpret_cast<void*>(-2);
        if (a->n == 3) pthread_exit(reinterpret_cast<void*>(300));  // ends the thread here
        return reinterpret_cast<void*>(a->n * 10);
      }, &args[i]) == 0);
    }
    if (kFibers) CHECK(os_threads() == threads_before);
    for (int i = 0; i < 5; ++i) {
      void* ret = nullptr;
      CHECK(pthread_join(ts[i], &ret) == 0);
      CHECK(reinterpret_cast<long>(ret) == (i == 2 ? 300 : (i + 1) * 10));
      CHECK(pthread_equal(args[i].self, ts[i]));
      CHECK_FALSE(pthread_equal(args[i].self, pthread_self()));
    }
    CHECK(g_once_runs.load() == 1);
    CHECK(g_dtor_calls.load() == 5);
    CHECK(g_dtor_sum.load() == 1 + 2 + 3 + 4 + 5);  // pthread_exit ran the destructor too
    CHECK(pthread_getspecific(key) == reinterpret_cast<void*>(1000));
    pthread_setspecific(key, nullptr);

    // Detached threads clean up after themselves; joining one is EINVAL; joining yourself
    // is EDEADLK.
    std::atomic<int> detached_ran{0};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t d;
    REQUIRE(pthread_create(&d, &attr, [](void* p) -> void* {
      pthread_attr_t mine;
      size_t size = 0;
      void* addr = nullptr;
      if (pthread_getattr_np(pthread_self(), &mine) == 0) {
        pthread_attr_getstack(&mine, &addr, &size);
        pthread_attr_destroy(&mine);
      }
      // The fiber's stack: the size asked for, and this frame inside it.
      const char* here = static_cast<const char*>(__builtin_frame_address(0));
      if (size >= 256 * 1024 && here > static_cast<char*>(addr) && here < static_cast<char*>(addr) + size)
        ++*static_cast<std::atomic<int>*>(p);
      ++*static_cast<std::atomic<int>*>(p);
      return nullptr;
    }, &detached_ran) == 0);
    CHECK(pthread_join(d, nullptr) == EINVAL);
    pthread_attr_destroy(&attr);
    ringlet::sleep(20ms);
    CHECK(detached_ran.load() == 2);
    std::atomic<int> self_join{-1};
    std::thread([&] { self_join = pthread_join(pthread_self(), nullptr); }).join();
    CHECK(self_join.load() == EDEADLK);
    CHECK(pthread_key_delete(key) == 0);
  });
}

TEST_CASE("threads: rwlocks, barriers and semaphores", "[patch][thread]") {
  in_scheduler([] {
    Ticker ticker;
    // rwlock: readers share, a writer excludes; a reader may re-enter.
    pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
    std::atomic<int> readers_in{0}, max_readers{0}, writer_saw_readers{-1};
    std::vector<std::thread> rs;
    for (int i = 0; i < 4; ++i)
      rs.emplace_back([&] {
        pthread_rwlock_rdlock(&rw);
        CHECK(pthread_rwlock_rdlock(&rw) == 0);  // recursive read
        const int n = ++readers_in;
        int m = max_readers.load();
        while (n > m && !max_readers.compare_exchange_weak(m, n)) {}
        usleep(20'000);
        --readers_in;
        pthread_rwlock_unlock(&rw);
        pthread_rwlock_unlock(&rw);
      });
    std::thread w([&] {
      usleep(5'000);
      pthread_rwlock_wrlock(&rw);
      writer_saw_readers = readers_in.load();
      CHECK(pthread_rwlock_trywrlock(&rw) == EBUSY);
      pthread_rwlock_unlock(&rw);
    });
    for (auto& t : rs) t.join();
    w.join();
    CHECK(max_readers.load() == 4);
    CHECK(writer_saw_readers.load() == 0);
    timespec at = abs_in(CLOCK_REALTIME, 30ms);
    pthread_rwlock_rdlock(&rw);
    std::atomic<int> timed{-1};
    std::thread([&] { timed = pthread_rwlock_timedwrlock(&rw, &at); }).join();
    CHECK(timed.load() == ETIMEDOUT);
    CHECK(pthread_rwlock_unlock(&rw) == 0);
    CHECK(pthread_rwlock_unlock(&rw) == EPERM);

    // std::shared_mutex is the same rwlock underneath.
    std::shared_mutex sm;
    {
      std::shared_lock a(sm);
      std::atomic<bool> got{true};
      std::thread([&] { got = sm.try_lock(); }).join();
      CHECK_FALSE(got.load());
    }

    // Barrier: three rounds of four; exactly one serial thread per round.
    pthread_barrier_t bar;
    REQUIRE(pthread_barrier_init(&bar, nullptr, 4) == 0);
    std::atomic<int> serial{0}, passed{0};
    std::vector<std::thread> bs;
    for (int i = 0; i < 4; ++i)
      bs.emplace_back([&, i] {
        for (int round = 0; round < 3; ++round) {
          usleep(1000 * (i + 1));
          if (pthread_barrier_wait(&bar) == PTHREAD_BARRIER_SERIAL_THREAD) ++serial;
          ++passed;
        }
      });
    for (auto& t : bs) t.join();
    CHECK(serial.load() == 3);
    CHECK(passed.load() == 12);
    CHECK(pthread_barrier_destroy(&bar) == 0);

    // Semaphores: post/wait between threads, trywait, timedwait, getvalue.
    sem_t sem;
    REQUIRE(sem_init(&sem, 0, 0) == 0);
    CHECK(sem_trywait(&sem) == -1);
    CHECK(errno == EAGAIN);
    const int before = ticker.ticks.load();
    timespec s_at = abs_in(CLOCK_REALTIME, 60ms);
    CHECK(sem_timedwait(&sem, &s_at) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(ticker.ticks.load() > before + 5);
    std::thread poster([&] {
      for (int i = 0; i < 100; ++i) {
        sem_post(&sem);
        if (i % 10 == 0) usleep(1000);
      }
    });
    for (int i = 0; i < 100; ++i) CHECK(sem_wait(&sem) == 0);
    poster.join();
    int v = -1;
    sem_getvalue(&sem, &v);
    CHECK(v == 0);
    sem_post(&sem);
    sem_getvalue(&sem, &v);
    CHECK(v == 1);
    timespec c_at = abs_in(CLOCK_MONOTONIC, 10ms);
    CHECK(sem_clockwait(&sem, CLOCK_MONOTONIC, &c_at) == 0);
    CHECK(sem_destroy(&sem) == 0);
  });
}

TEST_CASE("threads: errno belongs to each fiber", "[patch][thread]") {
  in_scheduler([] {
    std::atomic<int> a_saw{-1}, b_saw{-1};
    std::thread a([&] {
      errno = EAGAIN;
      usleep(20'000);  // b runs meanwhile and sets its own errno
      a_saw = errno;
    });
    std::thread b([&] {
      errno = ENOENT;
      usleep(40'000);
      b_saw = errno;
    });
    errno = EPIPE;
    a.join();
    b.join();
    CHECK(a_saw.load() == EAGAIN);
    CHECK(b_saw.load() == ENOENT);
    CHECK(errno == EPIPE);
  });
}

TEST_CASE("threads: std::future, std::async and atomic waits (libstdc++'s own futex)", "[patch][thread]") {
  in_scheduler([] {
    const int threads_before = os_threads();
    Ticker ticker;
    std::promise<int> p;
    std::future<int> f = p.get_future();
    std::thread setter([&] {
      usleep(30'000);
      p.set_value(42);
    });
    const int before = ticker.ticks.load();
    CHECK(f.get() == 42);  // waited on a futex through syscall(2): parked, not blocked
    CHECK(ticker.ticks.load() > before + 2);
    setter.join();

    auto fut = std::async(std::launch::async, [] {
      usleep(10'000);
      return 7;
    });
    CHECK(fut.wait_for(1ms) == std::future_status::timeout);
    CHECK(fut.get() == 7);

    std::atomic<int> flag{0};
    std::thread waker([&] {
      usleep(20'000);
      flag = 1;
      flag.notify_one();
    });
    flag.wait(0);
    CHECK(flag.load() == 1);
    waker.join();
    if (kFibers) CHECK(os_threads() == threads_before);
  });
}

TEST_CASE("threads: fibers and real threads share the same mutexes and conditions", "[patch][thread]") {
  in_scheduler([] {
    std::mutex mu;
    std::condition_variable cv;
    long counter = 0;
    int turn = 0;
    constexpr int kRounds = 2000;
    // A real OS thread (the thread group off while it is created) ping-pongs with a fiber.
    patch::disable(patch::Thread);
    const int threads_before = os_threads();
    std::thread real([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return turn == 1; });
        ++counter;
        turn = 0;
        cv.notify_all();
      }
    });
    patch::enable(patch::Thread);
    CHECK(os_threads() >= threads_before + 1);
    for (int i = 0; i < kRounds; ++i) {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return turn == 0; });
      ++counter;
      turn = 1;
      cv.notify_all();
    }
    real.join();
    CHECK(counter == 2 * kRounds);
  });
}

TEST_CASE("threads: ringlet's own threads stay real and never reach the pthread_create hook", "[patch][thread]") {
  patch::set_counting(true);
  patch::reset_stats();
  struct Seen {
    long tid = 0;
    bool signals_blocked = false;
  };
  auto look = [] {
    Seen s;
    s.tid = syscall(SYS_gettid);
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, nullptr, &m);
    s.signals_blocked = sigismember(&m, SIGINT) == 1 && sigismember(&m, SIGUSR1) == 1;
    return s;
  };
  ringlet::RunOptions opts;
  opts.threads = 2;
  ringlet::run([&] {
    const long here = syscall(SYS_gettid);
    ringlet::ThreadPool pool{ringlet::ThreadPool::OnDemand{1}};  // its worker starts from this fiber
    const Seen worker = pool.submit(look).get();
    CHECK(worker.tid != here);
    CHECK(worker.signals_blocked);
    const long core1 = ringlet::spawn_on(1, [] { return syscall(SYS_gettid); }).get();
    CHECK(core1 != here);
  }, opts);
  // ASan's interceptor passes them on to the hook, which lets them through as real threads.
  if (kFibers) {
    CHECK(patch::stats("pthread_create").on_fiber == 0);
    CHECK(patch::stats("pthread_create").passed == 0);
  }
  patch::set_counting(false);
}

TEST_CASE("threads: a fiber joins a plain OS thread without stopping the others", "[patch][thread]") {
  in_scheduler([] {
    Ticker ticker;
    // With the thread group off for a moment, pthread_create makes a real OS thread.
    const unsigned groups = patch::enabled();
    patch::disable(patch::Thread);
    pthread_t t{};
    const int made = pthread_create(&t, nullptr, [](void*) -> void* {
      struct timespec ts{0, 150'000'000};
      nanosleep(&ts, nullptr);  // a plain thread: the real sleep
      return reinterpret_cast<void*>(42);
    }, nullptr);
    patch::enable(groups);
    REQUIRE(made == 0);
    // A timed join that runs out first, then the join itself.
    const auto start = ringlet::Clock::now();
    timespec at{};
    clock_gettime(CLOCK_MONOTONIC, &at);
    at.tv_nsec += 30'000'000;
    if (at.tv_nsec >= 1'000'000'000) at.tv_sec += 1, at.tv_nsec -= 1'000'000'000;
    void* ret = nullptr;
    CHECK(pthread_clockjoin_np(t, &ret, CLOCK_MONOTONIC, &at) == ETIMEDOUT);
    const int ticks_before = ticker.ticks.load();
    CHECK(pthread_join(t, &ret) == 0);
    CHECK(ret == reinterpret_cast<void*>(42));
    CHECK(seconds_since(start) >= 0.14);
    // The scheduler ran the ticker while this fiber waited for the join.
    CHECK(ticker.ticks.load() - ticks_before >= 5);
  });
}
