/* Two threads ping-pong with sched_yield(), each reading and writing a __thread counter at
 * every iteration: under ringlet-run the two are fibers on one OS thread and every iteration
 * is one switch to the other thread, so this measures a fiber thread's switch with its
 * thread pointer (per-thread TLS) or without (RINGLET_THREAD_TLS=shared). Run natively it is
 * two OS threads calling sched_yield, for reference only: on more than one core that is not
 * a switch. Run by bench/patch/tls_switch.sh.
 *
 *   tls_switch [SECONDS]     run for SECONDS (default 1, clamped to 0.01..60)
 *   tls_switch -n N          run until each thread has done N iterations
 *
 * prints one line:
 *   ns_per_switch X switches N seconds S tls per-thread|shared
 * ns_per_switch = wall time / (iterations of both threads). "tls" says what the program saw:
 * per-thread if the two threads' counters are at different addresses and each counted only
 * its own iterations, shared if they are one variable (its final value is both counts' sum).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static __thread long counter;

static double seconds = 1.0;
static long fixed_n;  /* > 0: iterations per thread instead of a time */
static atomic_int stop;
static pthread_barrier_t start;
static double t0, t1; /* t0: thread 0 past the barrier; t1: main after the joins */

struct side {
  int me;
  long iters;
  long counted;        /* the thread-local counter's value at the end */
  const long* address; /* where this thread's counter is */
};

static void* run(void* arg) {
  struct side* s = arg;
  counter = 0;
  pthread_barrier_wait(&start);
  if (s->me == 0) t0 = now();
  long i = 0;
  for (;;) {
    /* read and write the thread-local through its address every iteration: the compiler
     * cannot keep it in a register across sched_yield (an opaque call), and the asm makes
     * sure the load and store are not folded away either */
    long c = counter;
    __asm__ volatile("" : "+r"(c));
    counter = c + 1;
    ++i;
    sched_yield();
    if (fixed_n) {
      if (i >= fixed_n) break;
    } else if (s->me == 0) {
      if ((i & 1023) == 0 && now() - t0 >= seconds) {
        atomic_store_explicit(&stop, 1, memory_order_relaxed);
        break;
      }
    } else if (atomic_load_explicit(&stop, memory_order_relaxed)) {
      break;
    }
  }
  s->iters = i;
  s->counted = counter;
  s->address = &counter;
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    fixed_n = atol(argv[2]);
    if (fixed_n < 1) fixed_n = 1;
  } else if (argc > 1) {
    seconds = atof(argv[1]);
  }
  if (!(seconds >= 0.01)) seconds = 0.01;
  if (seconds > 60) seconds = 60;
  pthread_barrier_init(&start, NULL, 2);
  struct side s[2] = {{.me = 0}, {.me = 1}};
  pthread_t t[2];
  for (int k = 0; k < 2; k++)
    if (pthread_create(&t[k], NULL, run, &s[k]) != 0) {
      fprintf(stderr, "tls_switch: pthread_create failed\n");
      return 1;
    }
  for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
  t1 = now(); /* after both joins: a thread's last iteration and its exit are counted in */
  const long total = s[0].iters + s[1].iters;
  const char* tls;
  if (s[0].address != s[1].address && s[0].counted == s[0].iters && s[1].counted == s[1].iters)
    tls = "per-thread";
  else if (s[0].address == s[1].address)
    tls = "shared";
  else
    tls = "inconsistent";
  printf("ns_per_switch %.2f switches %ld seconds %.3f tls %s\n", (t1 - t0) * 1e9 / (double)total,
         total, t1 - t0, tls);
  return strcmp(tls, "inconsistent") == 0;
}
