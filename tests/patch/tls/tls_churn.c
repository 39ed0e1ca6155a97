/* Thread churn with thread-locals: no leak per thread.
 *
 * 2 000 short threads as a warm-up (stack caches, arenas and whatever pools the patch keeps
 * fill up), then the resident set size (/proc/self/statm) and the number of open descriptors
 * (/proc/self/fd) are taken; then 100 000 more, created and joined 64 at a time. Each checks
 * that its `__thread` array and scalar hold the image's values (zeros, 777: a recycled TLS
 * block must be reinitialised), then writes all of them. No destructors, no C++.
 *
 * Afterwards the descriptors must be exactly as many as before, and the RSS may have grown by
 * less than 16 MiB. The bound: anything kept per thread shows as at least
 * 100 000 x (its size): one page per thread would be 390 MiB, one 8 KiB TLS block 780 MiB, and
 * even 168 bytes per thread exceeds 16 MiB; while what legitimately grows after the warm-up
 * (malloc's heap for the 64 handles in flight, stack and TLS caches already filled, page
 * cache-like noise in libc) stays in the hundreds of KiB. 16 MiB leaves room for that noise
 * and for a pool that grows in steps of a few MiB.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WARMUP 2000
#define THREADS 100000
#define BATCH 64
#define ARR 8192
#define RSS_BOUND_MIB 16

__thread char arr[ARR];
__thread int seed = 777;

static atomic_int n_bad;
static atomic_long first_bad = -1;
static char first_bad_what[128];

static void* body(void* arg) {
  long n = (long)arg;
  const char* what = NULL;
  int at = 0;
  if (seed != 777) what = "seed", at = seed;
  for (int k = 0; !what && k < ARR; ++k)
    if (arr[k] != 0) what = "arr", at = k;
  if (what) {
    long expected = -1;
    if (atomic_fetch_add(&n_bad, 1) == 0 &&
        atomic_compare_exchange_strong(&first_bad, &expected, n))
      snprintf(first_bad_what, sizeof first_bad_what, "%s %s %d", what,
               what[0] == 's' ? "was" : "non-zero at", at);
  }
  memset(arr, (int)(n % 127) + 1, sizeof arr);
  seed = (int)n;
  return (void*)(long)(arr[n % ARR] + seed);
}

static long rss_kib(void) {
  FILE* f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int open_fds(void) {
  DIR* d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  for (struct dirent* e; (e = readdir(d));)
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

static int run(long first, long count) {
  pthread_t t[BATCH];
  for (long done = 0; done < count; done += BATCH) {
    int m = count - done < BATCH ? (int)(count - done) : BATCH;
    for (int i = 0; i < m; ++i) {
      int rc = pthread_create(&t[i], NULL, body, (void*)(first + done + i));
      if (rc != 0) {
        printf("tls_churn: FAILED: pthread_create of thread %ld: %s\n", first + done + i,
               strerror(rc));
        for (int j = 0; j < i; ++j) pthread_join(t[j], NULL);
        return -1;
      }
    }
    for (int i = 0; i < m; ++i) pthread_join(t[i], NULL);
  }
  return 0;
}

int main(void) {
  alarm(60);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (run(0, WARMUP) != 0) return 1;
  long rss_before = rss_kib();
  int fds_before = open_fds();
  if (run(WARMUP, THREADS) != 0) return 1;
  long rss_after = rss_kib();
  int fds_after = open_fds();
  clock_gettime(CLOCK_MONOTONIC, &t1);
  fprintf(stderr, "tls_churn: %.2f s; rss %ld -> %ld KiB; descriptors %d -> %d\n",
          (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9, rss_before,
          rss_after, fds_before, fds_after);

  int ok = 1;
  if (n_bad) {
    printf(
        "tls_churn: FAILED: %d threads did not start with the image's thread-locals (thread "
        "%ld: %s)\n",
        (int)n_bad, (long)first_bad, first_bad_what);
    ok = 0;
  }
  if (fds_before < 0 || fds_after != fds_before) {
    printf("tls_churn: FAILED: %d descriptors open before, %d after\n", fds_before, fds_after);
    ok = 0;
  }
  if (rss_before < 0 || rss_after < 0 || rss_after - rss_before >= RSS_BOUND_MIB * 1024) {
    printf("tls_churn: FAILED: RSS grew from %ld to %ld KiB (bound: %d MiB)\n", rss_before,
           rss_after, RSS_BOUND_MIB);
    ok = 0;
  }
  if (!ok) return 1;
  printf("tls_churn: %d threads, descriptors back, rss within bound\n", THREADS);
  return 0;
}
