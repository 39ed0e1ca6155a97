/* A thread-per-connection echo server whose requests cost CPU: each read() is answered after
   a fixed amount of arithmetic (a request's "work"), then written back; plain blocking
   read/write, one POSIX thread per connection, as a new user would write it. Run natively and
   under ringlet-run by bench/patch_cores.sh.

     cpu_echo PORT ITERATIONS   serve; every read costs ITERATIONS rounds of the work loop
     cpu_echo --calibrate US    print the ITERATIONS that take about US microseconds here
                                (the fastest of 20 timed batches, so a busy machine inflates
                                it as little as possible)

   The count is fixed per run (calibrated once, natively, by the script), so native and
   patched servers do the same work per request whatever the clock says under load.       */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long g_iterations;
static volatile uint64_t g_sink; /* keeps the work from being optimised out */

/* xorshift64: a dependent chain the compiler cannot collapse or vectorise away. */
static uint64_t work(long n, uint64_t x) {
  for (long i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char buf[4096];
  ssize_t n;
  uint64_t x = 88172645463325252ull ^ (uint64_t)fd;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    x = work(g_iterations, x);
    g_sink = x;
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = write(fd, buf + off, (size_t)(n - off));
      if (w <= 0) goto done;
      off += w;
    }
  }
done:
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--calibrate") == 0) {
    const double us = atof(argv[2]);
    const long probe = 1000000;
    double best = 1e9;
    for (int i = 0; i < 20; ++i) {
      double t0 = now();
      g_sink = work(probe, 88172645463325252ull + (uint64_t)i);
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    printf("%ld\n", (long)(us * 1e-6 / best * (double)probe));
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: cpu_echo PORT ITERATIONS | cpu_echo --calibrate US\n");
    return 2;
  }
  int port = atoi(argv[1]);
  g_iterations = atol(argv[2]);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
    perror("listen");
    return 1;
  }
  printf("listening on %d\n", port);
  fflush(stdout);
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) {
      perror("accept");
      continue;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void*)(long)c) != 0) {
      close(c);
      continue;
    }
    pthread_detach(t);
  }
}
