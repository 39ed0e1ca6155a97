// Where the patch's pthread_create puts a thread when the run has two carriers
// (patch/thread/threads.cpp, pick_carrier).
#include <pthread.h>
#include <semaphore.h>

#include "helpers.hpp"
#include "ringlet/patch.hpp"

// On its creator's carrier, unless another has at least two fewer live fiber threads (main
// counts on carrier 0). The former rule, the fewest live threads first, sent main's first
// thread to carrier 1: a short thread made and joined in a loop paid two cross-core wake-ups.

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kFibers = false;  // the sanitizers' pthread_create needs a real thread
#else
constexpr bool kFibers = true;
#endif

ringlet::RunOptions two_carriers() {
  ringlet::RunOptions o;
  o.threads = 2;
  return o;
}

void* note_core(void* p) {
  *static_cast<unsigned*>(p) = ringlet::this_core();
  return nullptr;
}

struct Held {
  sem_t started{}, release{};
  Held() {
    sem_init(&started, 0, 0);
    sem_init(&release, 0, 0);
  }
  ~Held() {
    sem_destroy(&started);
    sem_destroy(&release);
  }
};

struct HeldThread {
  Held* held = nullptr;
  unsigned core = 99;
};

void* held_body(void* p) {
  auto* h = static_cast<HeldThread*>(p);
  h->core = ringlet::this_core();
  sem_post(&h->held->started);
  while (sem_wait(&h->held->release) != 0) {
  }
  return nullptr;
}

}  // namespace

TEST_CASE("threads: a new pthread stays on its creator's carrier unless another has two fewer live threads",
          "[patch][thread][multicore]") {
  // Real threads (an ASan build) run on no core of the run: nothing is placed.
  if (!kFibers) return;
  ringlet::run(
      [] {
        REQUIRE(ringlet::cores() == 2);
        REQUIRE(ringlet::this_core() == 0);
        // Made and joined one at a time by main: each on main's carrier.
        for (int i = 0; i < 50; ++i) {
          unsigned core = 99;
          pthread_t t;
          REQUIRE(pthread_create(&t, nullptr, note_core, &core) == 0);
          REQUIRE(pthread_join(t, nullptr) == 0);
          INFO("thread " << i);
          REQUIRE(core == 0);
        }
        // Made by a fiber of carrier 1 (no thread lives there): on carrier 1.
        unsigned from_one = 99;
        int made = -1;
        ringlet::spawn_on(1, [&] {
          pthread_t t;
          if ((made = pthread_create(&t, nullptr, note_core, &from_one)) == 0) pthread_join(t, nullptr);
        }).get();
        REQUIRE(made == 0);
        CHECK(from_one == 1);
        // Threads that live on: carrier 0 keeps one while it has fewer than two more than
        // carrier 1 (main, then 1, 2, 3... on carrier 0 against 0, 1, 2... on carrier 1).
        Held held;
        HeldThread h[6];
        pthread_t t[6];
        for (int i = 0; i < 6; ++i) {
          h[i].held = &held;
          REQUIRE(pthread_create(&t[i], nullptr, held_body, &h[i]) == 0);
        }
        for (int i = 0; i < 6; ++i)
          while (sem_wait(&held.started) != 0) {
          }
        for (int i = 0; i < 6; ++i) {
          INFO("long-lived thread " << i);
          CHECK(h[i].core == static_cast<unsigned>(i % 2));
        }
        // With carrier 0 at main + 3 and carrier 1 at 3, a short thread stays with main.
        unsigned core = 99;
        pthread_t s;
        REQUIRE(pthread_create(&s, nullptr, note_core, &core) == 0);
        REQUIRE(pthread_join(s, nullptr) == 0);
        CHECK(core == 0);
        for (int i = 0; i < 6; ++i) sem_post(&held.release);
        for (auto& x : t) REQUIRE(pthread_join(x, nullptr) == 0);
      },
      two_carriers());
}
