// The patch's synchronisation objects across carriers (issue 21): fibers on two cores, and
// pthreads made by main on two carriers, hand values through pthread mutex/cond, sem_t,
// pthread_barrier and std::atomic wait.
#include <pthread.h>
#include <semaphore.h>

#include <atomic>
#include <tuple>

#include "helpers.hpp"
#include "patch_helpers.hpp"
#include "ringlet/patch.hpp"

using ringlet::test::kFibers;
using ringlet::test::os_threads;

namespace {

struct CrossMailbox {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
  long value = 0;
  void put(long v) {
    pthread_mutex_lock(&mu);
    while (value != 0) pthread_cond_wait(&changed, &mu);
    value = v;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&mu);
  }
  long take() {
    pthread_mutex_lock(&mu);
    while (value == 0) pthread_cond_wait(&changed, &mu);
    const long v = value;
    value = 0;
    pthread_cond_signal(&changed);
    pthread_mutex_unlock(&mu);
    return v;
  }
};

struct CrossSemRing {
  sem_t free_slots{}, full_slots{};
  long ring[8] = {};
  unsigned head = 0, tail = 0;
  CrossSemRing() {
    sem_init(&free_slots, 0, 8);
    sem_init(&full_slots, 0, 0);
  }
  ~CrossSemRing() {
    sem_destroy(&free_slots);
    sem_destroy(&full_slots);
  }
  void put(long v) {
    while (sem_wait(&free_slots) != 0) {
    }
    ring[head++ % 8] = v;
    sem_post(&full_slots);
  }
  long take() {
    while (sem_wait(&full_slots) != 0) {
    }
    const long v = ring[tail++ % 8];
    sem_post(&free_slots);
    return v;
  }
};

struct CrossBarrierSlot {
  pthread_barrier_t b{};
  long value = 0;
  CrossBarrierSlot() { pthread_barrier_init(&b, nullptr, 2); }
  ~CrossBarrierSlot() { pthread_barrier_destroy(&b); }
  void put(long v) {
    value = v;
    pthread_barrier_wait(&b);
    pthread_barrier_wait(&b);
  }
  long take() {
    pthread_barrier_wait(&b);
    const long v = value;
    pthread_barrier_wait(&b);
    return v;
  }
};

struct CrossAtomicSlot {
  std::atomic<int> full{0};
  long value = 0;  // plain: ordered by full's release/acquire only
  void put(long v) {
    for (int f; (f = full.load(std::memory_order_acquire)) != 0;) full.wait(f, std::memory_order_acquire);
    value = v;
    full.store(1, std::memory_order_release);
    full.notify_one();
  }
  long take() {
    while (full.load(std::memory_order_acquire) == 0) full.wait(0, std::memory_order_acquire);
    const long v = value;
    full.store(0, std::memory_order_release);
    full.notify_one();
    return v;
  }
};

struct CrossResult {
  long count = 0;
  long long sum = 0;
  bool in_order = true;
  unsigned producer_core = 99, consumer_core = 99;
};

template <class Channel>
void cross_produce(Channel& ch, long n, CrossResult& r) {
  r.producer_core = ringlet::this_core();
  for (long v = 1; v <= n; ++v) ch.put(v);
}

template <class Channel>
void cross_consume(Channel& ch, long n, CrossResult& r) {
  r.consumer_core = ringlet::this_core();
  for (long k = 1; k <= n; ++k) {
    const long v = ch.take();
    r.in_order = r.in_order && v == k;
    r.sum += v;
    ++r.count;
  }
}

template <class Channel>
void* cross_produce_thread(void* p) {
  auto* a = static_cast<std::tuple<Channel*, long, CrossResult*>*>(p);
  cross_produce(*std::get<0>(*a), std::get<1>(*a), *std::get<2>(*a));
  return nullptr;
}

template <class Channel>
void* cross_consume_thread(void* p) {
  auto* a = static_cast<std::tuple<Channel*, long, CrossResult*>*>(p);
  cross_consume(*std::get<0>(*a), std::get<1>(*a), *std::get<2>(*a));
  return nullptr;
}

void check_cross(const char* what, const CrossResult& r, long n, bool on_two_cores) {
  INFO(what << ": " << r.count << " taken, sum " << r.sum << ", producer on core " << r.producer_core
            << ", consumer on core " << r.consumer_core);
  CHECK(r.count == n);
  CHECK(r.in_order);
  CHECK(r.sum == n * (n + 1) / 2);
  if (on_two_cores) {
    CHECK(r.producer_core < 2);
    CHECK(r.consumer_core < 2);
    CHECK(r.producer_core != r.consumer_core);
  }
}

ringlet::RunOptions cross_two_cores() {
  ringlet::RunOptions o;
  o.threads = 2;
  return o;
}

// Fibers placed by hand with spawn_on: the producer on core 1, the consumer on core 0.
template <class Channel>
void cross_fibers(const char* what, long n) {
  Channel ch;
  CrossResult r;
  auto producer = ringlet::spawn_on(1, [&] { cross_produce(ch, n, r); });
  auto consumer = ringlet::spawn_on(0, [&] { cross_consume(ch, n, r); });
  producer.get();
  consumer.get();
  check_cross(what, r, n, true);
}

// pthreads made by main: the patch places them (patch/thread/placement.cpp): the producer
// where the fewest live (carrier 1), the consumer, made while the producer runs, likewise (0).
template <class Channel>
void cross_pthreads(const char* what, long n) {
  Channel ch;
  CrossResult r;
  std::tuple<Channel*, long, CrossResult*> args{&ch, n, &r};
  pthread_t p, c;
  REQUIRE(pthread_create(&p, nullptr, cross_produce_thread<Channel>, &args) == 0);
  REQUIRE(pthread_create(&c, nullptr, cross_consume_thread<Channel>, &args) == 0);
  REQUIRE(pthread_join(p, nullptr) == 0);
  REQUIRE(pthread_join(c, nullptr) == 0);
  // Real threads (an ASan build) run on no core of the run: only the values are checked.
  check_cross(what, r, n, kFibers);
}

}  // namespace

TEST_CASE("threads: fibers on two cores hand values through pthread mutex/cond, sem_t, barrier and atomic wait",
          "[patch][thread][multicore]") {
  ringlet::run(
      [] {
        REQUIRE(ringlet::cores() == 2);
        cross_fibers<CrossMailbox>("mutex + condvar", 20'000);
        cross_fibers<CrossSemRing>("semaphores", 20'000);
        cross_fibers<CrossBarrierSlot>("barrier", 5'000);
        cross_fibers<CrossAtomicSlot>("atomic wait", 20'000);
      },
      cross_two_cores());
}

TEST_CASE("threads: pthreads made by main on two carriers hand values through mutex/cond, sem_t, barrier and atomic wait",
          "[patch][thread][multicore]") {
  ringlet::run(
      [] {
        REQUIRE(ringlet::cores() == 2);
        const int os_before = os_threads();
        cross_pthreads<CrossMailbox>("mutex + condvar", 20'000);
        cross_pthreads<CrossSemRing>("semaphores", 20'000);
        cross_pthreads<CrossBarrierSlot>("barrier", 5'000);
        cross_pthreads<CrossAtomicSlot>("atomic wait", 20'000);
        if (kFibers) CHECK(os_threads() == os_before);  // no OS thread was made for them
      },
      cross_two_cores());
}
