/* Short-lived threads made one at a time, the way a thread-per-task program does it (Python's
 * ThreadingHTTPServer makes one per request): a loop of pthread_create + pthread_join of a
 * thread that returns at once. Run natively and under `ringlet-run --threads 1/2` by
 * bench/patch/create_join.sh.
 *
 *   create_join PAIRS [BATCH]
 *     prints "create_join_us X" (microseconds per create + join, wall clock) and, on stderr,
 *     how many distinct OS threads ran the threads (under ringlet-run: the carriers used).
 *   BATCH (default 1): threads made before joining them (BATCH creates, then BATCH joins).
 *
 *   create_join --helper MS ROUNDS
 *     the other side of placement: main makes one thread and both compute MS milliseconds
 *     (no calls), then main joins it; prints "helper_ms X", the wall time of a round (MS if
 *     they ran in parallel, 2 x MS if on one OS thread).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The kernel's id of the OS thread running the caller (under ringlet-run, the carrier of a
 * fiber thread: gettid() is virtual there), from /proc/thread-self -> "PID/task/TID". Read
 * for the first threads only. */
static long os_tid(void) {
  char link[64] = {0};
  const ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
  if (n <= 0) return -1;
  const char* slash = strrchr(link, '/');
  return slash ? atol(slash + 1) : -1;
}

enum { kSampled = 64 };
static long seen[kSampled];

static void* body(void* arg) {
  const intptr_t i = (intptr_t)arg;
  if (i >= 0 && i < kSampled) seen[i] = os_tid();
  return arg;
}

static volatile double sink;

static void compute_ms(double ms) {
  const double end = now_us() + ms * 1e3;
  double x = 1;
  while (now_us() < end)
    for (int i = 0; i < 1000; ++i) x = x * 1.0000001 + 1e-9;
  sink = x;
}

static long helper_tid;
static double helper_start, helper_end;

static void* helper(void* arg) {
  helper_tid = os_tid();
  helper_start = now_us();
  compute_ms(*(const double*)arg);
  helper_end = now_us();
  return NULL;
}

static int helper_rounds(double ms, long rounds) {
  double total = 0;
  long on_main = 0, overlapped = 0;
  for (long r = 0; r < rounds; ++r) {
    const double t0 = now_us();
    pthread_t t;
    if (pthread_create(&t, NULL, helper, &ms) != 0) return 1;
    const double mine_start = now_us();
    compute_ms(ms);
    const double mine_end = now_us();
    pthread_join(t, NULL);
    total += now_us() - t0;
    on_main += helper_tid == os_tid();
    overlapped += helper_start < mine_end && mine_start < helper_end;
  }
  fprintf(stderr, "create_join: the helper ran on main's OS thread in %ld of %ld rounds, at the same time as main in %ld\n",
          on_main, rounds, overlapped);
  printf("helper_ms %.3f\n", total / 1e3 / (double)rounds);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "--helper") == 0) return helper_rounds(atof(argv[2]), atol(argv[3]));
  const long pairs = argc > 1 ? atol(argv[1]) : 20000;
  const long batch = argc > 2 ? atol(argv[2]) : 1;
  if (pairs <= 0 || batch <= 0 || batch > 1024) {
    fprintf(stderr, "usage: create_join PAIRS [BATCH (1..1024)]\n");
    return 2;
  }
  pthread_t t[1024];
  /* Warm-up: the first threads' stacks and records. */
  for (long i = 0; i < 100; ++i) {
    if (pthread_create(&t[0], NULL, body, (void*)(intptr_t)-1) != 0) return 1;
    pthread_join(t[0], NULL);
  }
  const double t0 = now_us();
  long done = 0;
  while (done < pairs) {
    long k = 0;
    for (; k < batch && done + k < pairs; ++k)
      if (pthread_create(&t[k], NULL, body, (void*)(intptr_t)(done + k)) != 0) {
        fprintf(stderr, "create_join: pthread_create failed\n");
        return 1;
      }
    for (long j = 0; j < k; ++j) {
      void* r = NULL;
      pthread_join(t[j], &r);
      if ((intptr_t)r != done + j) {
        fprintf(stderr, "create_join: thread %ld returned %ld\n", done + j, (long)(intptr_t)r);
        return 1;
      }
    }
    done += k;
  }
  const double us = (now_us() - t0) / (double)pairs;
  long distinct[kSampled];
  int nd = 0;
  const long main_tid = os_tid();
  int on_main = 0;
  for (int i = 0; i < kSampled && i < pairs; ++i) {
    if (seen[i] == main_tid) ++on_main;
    int k = 0;
    while (k < nd && distinct[k] != seen[i]) ++k;
    if (k == nd) distinct[nd++] = seen[i];
  }
  fprintf(stderr, "create_join: the first %d threads ran on %d OS thread(s), %d on main's\n",
          (int)(pairs < kSampled ? pairs : kSampled), nd, on_main);
  printf("create_join_us %.3f\n", us);
  return 0;
}
