/* A "thread" that never blocks: it spins for 300 ms. Under ringlet-run it holds the only
 * scheduler thread, and the blocking monitor must name it and show where it spins.
 * `spin repeat`: it spins three times at the same place (a loop that calls nothing), so the
 * monitor reports the stack once and counts the repeats. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void spin_for(double seconds) {
  double end = now() + seconds;
  volatile unsigned long n = 0;
  while (now() < end) n++;
}

/* At least `seconds` of a loop with no call in it. The loop's speed is taken from the fastest
 * of five timed batches: a batch slowed by a busy machine would make the spin shorter than
 * asked (one spin of three under the monitor's 100 ms threshold, seen under load). */
__attribute__((noinline)) void spin_here(double seconds) {
  const unsigned long per = 1000000;
  double took = 1e9;
  for (int b = 0; b < 5; b++) {
    double t0 = now();
    for (volatile unsigned long n = 0; n < per; n++) {
    }
    const double t = now() - t0;
    if (t < took) took = t;
  }
  const unsigned long total = (unsigned long)((double)per * seconds / (took > 0 ? took : 1e-6));
  for (volatile unsigned long n = 0; n < total; n++) {
  }
}

static int repeat = 0;

static void* spinner(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "spinner");
  usleep(10000);
  if (!repeat) {
    spin_for(0.3);
    return NULL;
  }
  for (int i = 0; i < 3; i++) {
    spin_here(0.4);
    usleep(20000);
  }
  /* The monitor says a fiber let go at its next sample (every 50 ms): stay long enough for
   * the third to be seen before main, which may run on another carrier, exits. */
  usleep(200000);
  return NULL;
}

int main(int argc, char** argv) {
  repeat = argc > 1 && argv[1][0] == 'r';
  pthread_t t;
  if (pthread_create(&t, NULL, spinner, NULL) != 0) return 1;
  for (int i = 0; i < 20; i++) usleep(25000); /* patched sleeps: short switches */
  pthread_join(t, NULL);
  puts("done");
  return 0;
}
