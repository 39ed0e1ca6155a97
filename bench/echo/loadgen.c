/* Echo load generator without ringlet: one thread, epoll, N connections each doing
 * ping-pong (send a message of S bytes, read the whole echo back, send the next) for a fixed
 * time. Prints one line: round trips, msgs/s and latency percentiles.
 *
 *   loadgen HOST PORT CONNS SIZE SECONDS [WARMUP_SECONDS [SERVER_PID]]
 *   loadgen HOST PORT CONNS SIZE idle SECONDS   hold CONNS connections open, each having
 *                                               echoed one message, for SECONDS
 *
 * With SERVER_PID, the server's CPU time (utime+stime of /proc/PID/stat, every thread) is
 * read at the start and the end of the measured window and reported per round trip.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t sent, got;
  uint64_t start_ns;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Latency histogram: 1 us buckets up to 100 ms, then one overflow bucket. */
#define BUCKETS 100001
static uint64_t hist[BUCKETS];
static uint64_t hist_n;

static double percentile(double p) {
  uint64_t want = (uint64_t)(p * (double)hist_n), seen = 0;
  for (int i = 0; i < BUCKETS; i++) {
    seen += hist[i];
    if (seen > want) return (double)i;
  }
  return (double)(BUCKETS - 1);
}

/* utime+stime of a process, in clock ticks; -1 if unreadable. */
static long long cpu_ticks(int pid) {
  char path[64], buf[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* p = strrchr(buf, ')'); /* the command name may hold spaces */
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return (long long)(ut + st);
}

static void die(const char* what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: loadgen HOST PORT CONNS SIZE SECONDS [WARMUP] | loadgen HOST PORT CONNS SIZE idle SECONDS\n");
    return 2;
  }
  const char* host = argv[1];
  int port = atoi(argv[2]), nconns = atoi(argv[3]);
  size_t size = (size_t)atol(argv[4]);
  int idle = strcmp(argv[5], "idle") == 0;
  double seconds = atof(idle ? argv[6] : argv[5]);
  double warmup = (!idle && argc > 6) ? atof(argv[6]) : 0.5;
  int server_pid = (!idle && argc > 7) ? atoi(argv[7]) : 0;
  long long cpu0 = -1;
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);

  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  char* out = malloc(size);
  char* in = malloc(size);
  for (size_t i = 0; i < size; i++) out[i] = (char)('a' + i % 26);

  int ep = epoll_create1(0);
  struct conn* cs = calloc((size_t)nconns, sizeof *cs);
  for (int i = 0; i < nconns; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  /* Every connection sends its first message; writes of these sizes fit the socket buffer. */
  uint64_t t0 = now_ns();
  for (int i = 0; i < nconns; i++) {
    cs[i].start_ns = t0;
    if (write(cs[i].fd, out, size) != (ssize_t)size) die("write");
  }
  uint64_t measure_from = t0 + (uint64_t)(warmup * 1e9);
  uint64_t end = measure_from + (uint64_t)(seconds * 1e9);
  uint64_t trips = 0, errors = 0, mismatches = 0;
  int echoed_once = 0;
  struct epoll_event evs[256];
  if (idle) end = t0 + 60000000000ull; /* at most a minute to get every first echo back */
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end || (idle && echoed_once == nconns)) break;
    if (server_pid && cpu0 < 0 && t >= measure_from) cpu0 = cpu_ticks(server_pid);
    int n = epoll_wait(ep, evs, 256, 100);
    for (int k = 0; k < n; k++) {
      struct conn* c = evs[k].data.ptr;
      ssize_t r = read(c->fd, in + c->got, size - c->got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        errors++;
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        continue;
      }
      if (memcmp(in + c->got, out + c->got, (size_t)r) != 0) mismatches++;
      c->got += (size_t)r;
      if (c->got < size) continue;
      uint64_t done = now_ns();
      c->got = 0;
      if (idle) {
        echoed_once++;
        continue;
      }
      if (done >= measure_from) {
        trips++;
        uint64_t us = (done - c->start_ns) / 1000;
        hist[us < BUCKETS ? us : BUCKETS - 1]++;
        hist_n++;
      }
      c->start_ns = done;
      size_t w = 0;
      while (w < size) {
        ssize_t x = write(c->fd, out + w, size - w);
        if (x < 0) die("write");
        w += (size_t)x;
      }
    }
  }
  if (idle) {
    if (echoed_once < nconns) {
      fprintf(stderr, "loadgen: only %d of %d connections echoed\n", echoed_once, nconns);
      return 1;
    }
    printf("idle: %d connections open\n", nconns);
    fflush(stdout);
    struct timespec hold = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&hold, NULL);
    printf("idle: held %d connections for %.1f s, errors=%llu\n", nconns, seconds, (unsigned long long)errors);
    return errors ? 1 : 0;
  }
  double cpu_us = -1;
  if (server_pid && cpu0 >= 0) {
    long long cpu1 = cpu_ticks(server_pid);
    if (cpu1 >= 0 && trips) cpu_us = (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)trips;
  }
  printf("conns=%d size=%zu trips=%llu secs=%.2f msgs_per_s=%.0f p50_us=%.0f p99_us=%.0f cpu_us_per_msg=%.3f errors=%llu mismatches=%llu\n",
         nconns, size, (unsigned long long)trips, seconds, (double)trips / seconds, percentile(0.50),
         percentile(0.99), cpu_us, (unsigned long long)errors, (unsigned long long)mismatches);
  return errors || mismatches ? 1 : 0;
}
