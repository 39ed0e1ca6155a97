/* The cost of an interposed libc call that passes through (not on a fiber) against the bare
   libc call, in the same process. "bare" calls libc's own read/poll/recv through pointers
   taken from libc.so.6 itself; "interposed" calls them by name, which under LD_PRELOAD of
   libringlet_patch.so reaches the hook first. Both make the same failing system call
   (fd -1: EBADF), so the difference is the hook. Batches alternate; medians are printed.
     passthrough [calls-per-batch] [batches]                                               */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

typedef ssize_t (*read_fn)(int, void*, size_t);
typedef ssize_t (*recv_fn)(int, void*, size_t, int);
typedef int (*poll_fn)(struct pollfd*, nfds_t, int);

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  int batches = argc > 2 ? atoi(argv[2]) : 15;
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (!libc) libc = dlopen("libc.so.6", RTLD_NOW);
  read_fn bare_read = (read_fn)dlsym(libc, "read");
  recv_fn bare_recv = (recv_fn)dlsym(libc, "recv");
  poll_fn bare_poll = (poll_fn)dlsym(libc, "poll");
  /* What the program's own calls reach (the hook, if preloaded). */
  read_fn named_read = (read_fn)dlsym(RTLD_DEFAULT, "read");
  int hooked = named_read != bare_read;
  char buf[1];
  struct pollfd pf = {-1, POLLIN, 0};
  double* t[6];
  for (int k = 0; k < 6; ++k) t[k] = calloc((size_t)batches, sizeof(double));
  for (int b = 0; b < batches; ++b) {
    double t0 = now_ns();
    for (long i = 0; i < n; ++i) bare_read(-1, buf, 1);
    double t1 = now_ns();
    for (long i = 0; i < n; ++i) read(-1, buf, 1);
    double t2 = now_ns();
    for (long i = 0; i < n; ++i) bare_recv(-1, buf, 1, 0);
    double t3 = now_ns();
    for (long i = 0; i < n; ++i) recv(-1, buf, 1, 0);
    double t4 = now_ns();
    for (long i = 0; i < n; ++i) bare_poll(&pf, 1, 0);
    double t5 = now_ns();
    for (long i = 0; i < n; ++i) poll(&pf, 1, 0);
    double t6 = now_ns();
    t[0][b] = (t1 - t0) / n, t[1][b] = (t2 - t1) / n, t[2][b] = (t3 - t2) / n;
    t[3][b] = (t4 - t3) / n, t[4][b] = (t5 - t4) / n, t[5][b] = (t6 - t5) / n;
  }
  const char* names[3] = {"read", "recv", "poll"};
  printf("passthrough: hook %s; %ld calls x %d batches, median ns per call\n",
         hooked ? "loaded" : "NOT loaded (run under LD_PRELOAD)", n, batches);
  for (int k = 0; k < 3; ++k) {
    qsort(t[2 * k], (size_t)batches, sizeof(double), cmp);
    qsort(t[2 * k + 1], (size_t)batches, sizeof(double), cmp);
    double bare = t[2 * k][batches / 2], hook = t[2 * k + 1][batches / 2];
    printf("passthrough %-5s bare %7.1f ns  interposed %7.1f ns  overhead %+5.1f ns (%.3fx)\n", names[k], bare,
           hook, hook - bare, hook / bare);
  }
  return 0;
}
