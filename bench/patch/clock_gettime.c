/* clock_gettime per call, on a thread (under ringlet-run a fiber thread), for the clock
 * named: the patch's clock_gettime hook passes every clock but the thread CPU clocks straight
 * to glibc's (the vDSO), and answers CLOCK_THREAD_CPUTIME_ID from the fiber's run time.
 * Run by bench/patch/cpu_clock.sh.
 *
 *   clock_gettime monotonic|realtime|thread [N]   N calls (default 20 000 000; thread: a tenth)
 *
 * prints one line:  clock C ns_per_call X calls N
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t clk;
static long n = 20000000;
static double result;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void* body(void* arg) {
  (void)arg;
  struct timespec ts;
  unsigned long sink = 0;
  const double t0 = now();
  for (long i = 0; i < n; ++i) {
    clock_gettime(clk, &ts);
    sink += (unsigned long)ts.tv_nsec;
  }
  result = (now() - t0) * 1e9 / (double)n;
  if (sink == 1) puts("");  /* keep the calls */
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: clock_gettime monotonic|realtime|thread [N]\n");
    return 2;
  }
  if (strcmp(argv[1], "monotonic") == 0) clk = CLOCK_MONOTONIC;
  else if (strcmp(argv[1], "realtime") == 0) clk = CLOCK_REALTIME;
  else if (strcmp(argv[1], "thread") == 0) {
    clk = CLOCK_THREAD_CPUTIME_ID;
    n /= 10;
  } else {
    fprintf(stderr, "clock_gettime: unknown clock %s\n", argv[1]);
    return 2;
  }
  if (argc > 2) n = atol(argv[2]);
  pthread_t t;
  pthread_create(&t, NULL, body, NULL);
  pthread_join(t, NULL);
  printf("clock %s ns_per_call %.2f calls %ld\n", argv[1], result, n);
  return 0;
}
