/* A "thread" that never blocks: it spins for 300 ms. Under ringlet-run it holds the only
 * scheduler thread, and the blocking monitor must name it and show where it spins. */
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

static void* spinner(void* arg) {
  (void)arg;
  pthread_setname_np(pthread_self(), "spinner");
  usleep(10000);
  spin_for(0.3);
  return NULL;
}

int main(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, spinner, NULL) != 0) return 1;
  for (int i = 0; i < 20; i++) usleep(25000); /* patched sleeps: short switches */
  pthread_join(t, NULL);
  puts("done");
  return 0;
}
