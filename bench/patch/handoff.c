/* Mutex and condition-variable handoff between two threads, the way a thread-per-task
 * program does it: run natively (two OS threads) and under ringlet-run (two fibers on one
 * thread) by bench/patch/threads.sh.
 *
 *   handoff ROUNDS   prints: "lock_unlock_ns X  cond_pingpong_ns Y  mutex_handoff_ns Z"
 *
 * lock_unlock: uncontended pthread_mutex_lock+unlock, one thread.
 * cond_pingpong: two threads take turns through one mutex and two condition variables;
 *   ns per turn (one signal, one wake-up).
 * mutex_handoff: two threads alternate owning one mutex, each taking it as the other
 *   releases it (a turn counter checked under the lock); ns per acquisition.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv[2] = {PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};
static long rounds;
static int turn;

static void* pingpong(void* arg) {
  int me = (int)(long)arg;
  pthread_mutex_lock(&mu);
  for (long i = 0; i < rounds; i++) {
    while (turn != me) pthread_cond_wait(&cv[me], &mu);
    turn = 1 - me;
    pthread_cond_signal(&cv[1 - me]);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void* alternate(void* arg) {
  int me = (int)(long)arg;
  for (long i = 0; i < rounds;) {
    pthread_mutex_lock(&mu);
    if (turn == me) {
      turn = 1 - me;
      i++;
    }
    pthread_mutex_unlock(&mu);
    sched_yield();  /* let the other side in: a thread would be preempted, a fiber yields */
  }
  return NULL;
}

static double two_threads(void* (*fn)(void*)) {
  pthread_t a, b;
  turn = 0;
  double t0 = now();
  pthread_create(&a, NULL, fn, (void*)0L);
  pthread_create(&b, NULL, fn, (void*)1L);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  return (now() - t0) / (double)(2 * rounds);
}

int main(int argc, char** argv) {
  rounds = argc > 1 ? atol(argv[1]) : 200000;
  double t0 = now();
  for (long i = 0; i < rounds * 10; i++) {
    pthread_mutex_lock(&mu);
    pthread_mutex_unlock(&mu);
  }
  double lock_ns = (now() - t0) / (double)(rounds * 10);
  double pp = two_threads(pingpong);
  double ho = two_threads(alternate);
  printf("lock_unlock_ns %.1f  cond_pingpong_ns %.1f  mutex_handoff_ns %.1f\n", lock_ns, pp, ho);
  return 0;
}
