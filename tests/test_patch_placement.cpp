// Where the patch's pthread_create puts a thread when the run has two carriers
// (patch/thread/placement.cpp).
#include <pthread.h>
#include <semaphore.h>

#include "helpers.hpp"
#include "patch_helpers.hpp"
#include "ringlet/patch.hpp"

// On its creator's carrier when the thread the creator made last has ended within 200 us of
// its start, unless another carrier has at least two fewer live fiber threads; otherwise on the carrier with the fewest
// (main counts on carrier 0). The former rule, the fewest first always, sent each of main's
// short threads made and joined in a loop to carrier 1: two cross-core wake-ups each.

using ringlet::test::kFibers;  // the sanitizers' pthread_create needs a real thread

namespace {

ringlet::RunOptions two_carriers() {
  ringlet::RunOptions o;
  o.threads = 2;
  return o;
}

void* note_core(void* p) {
  *static_cast<unsigned*>(p) = ringlet::this_core();
  return nullptr;
}

struct HeldThread {
  sem_t* started = nullptr;
  sem_t release{};
  unsigned core = 99;
  HeldThread() { sem_init(&release, 0, 0); }
  ~HeldThread() { sem_destroy(&release); }
};

// Says where it runs, then waits until released.
void* held_body(void* p) {
  auto* h = static_cast<HeldThread*>(p);
  h->core = ringlet::this_core();
  sem_post(h->started);
  while (sem_wait(&h->release) != 0) {
  }
  return nullptr;
}

unsigned short_thread() {
  unsigned core = 99;
  pthread_t t;
  if (pthread_create(&t, nullptr, note_core, &core) != 0 || pthread_join(t, nullptr) != 0) return 98;
  return core;
}

}  // namespace

TEST_CASE("threads: a thread made after its creator's last one ended stays on the creator's carrier; others spread",
          "[patch][thread][multicore]") {
  // Real threads (an ASan build) run on no core of the run: nothing is placed.
  if (!kFibers) return;
  ringlet::run(
      [] {
        REQUIRE(ringlet::cores() == 2);
        REQUIRE(ringlet::this_core() == 0);
        // Made and joined one at a time by main: the first where the fewest live (carrier 1:
        // main holds 0), each after it on main's carrier.
        // (Ten: each must end within 200 us of its start, which a preempted carrier can
        // miss on a loaded machine; every one more is one more chance of that.)
        for (int i = 0; i < 10; ++i) {
          unsigned core = 99;
          pthread_t t;
          REQUIRE(pthread_create(&t, nullptr, note_core, &core) == 0);
          REQUIRE(pthread_join(t, nullptr) == 0);
          INFO("thread " << i);
          REQUIRE(core == (i == 0 ? 1u : 0u));
        }
        // Made by a fiber of carrier 1, its first: where the fewest live (carrier 1).
        unsigned from_one = 99;
        int made = -1;
        ringlet::spawn_on(1, [&] {
          pthread_t t;
          if ((made = pthread_create(&t, nullptr, note_core, &from_one)) == 0) pthread_join(t, nullptr);
        }).get();
        REQUIRE(made == 0);
        CHECK(from_one == 1);
        // Threads that live on. The first stays with main (its last thread ended: carrier 0 at
        // main + 1 against 0); each after it is made while the one before still runs, so it
        // goes where the fewest live: 1, 1, then 0 (a tie goes to the lowest), 1, 0.
        sem_t started;
        sem_init(&started, 0, 0);
        HeldThread h[6];
        pthread_t t[6];
        for (int i = 0; i < 6; ++i) {
          h[i].started = &started;
          REQUIRE(pthread_create(&t[i], nullptr, held_body, &h[i]) == 0);
        }
        for (int i = 0; i < 6; ++i)
          while (sem_wait(&started) != 0) {
          }
        const unsigned want[6] = {0, 1, 1, 0, 1, 0};
        for (int i = 0; i < 6; ++i) {
          INFO("long-lived thread " << i);
          CHECK(h[i].core == want[i]);
        }
        // Main's last thread still runs: a short one goes where the fewest live (carrier 1:
        // 3 there against main + 3); the next, made after that one ended, stays with main
        // although carrier 1 has one fewer.
        CHECK(short_thread() == 1);
        CHECK(short_thread() == 0);
        // Not when another carrier has two fewer: with two of carrier 1's gone (main + 3
        // against 1), the next goes there although main's last thread has ended.
        sem_post(&h[1].release);
        sem_post(&h[2].release);
        REQUIRE(pthread_join(t[1], nullptr) == 0);
        REQUIRE(pthread_join(t[2], nullptr) == 0);
        CHECK(short_thread() == 1);
        for (int i : {0, 3, 4, 5}) {
          sem_post(&h[i].release);
          REQUIRE(pthread_join(t[i], nullptr) == 0);
        }
        sem_destroy(&started);
      },
      two_carriers());
}
