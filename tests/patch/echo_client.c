/* A checking client for the thread-per-connection echo server test: opens N connections,
 * sends each a message naming it and checks the echo, says "open N" and holds them for S
 * seconds (the test samples the server meanwhile), then checks a second round on every
 * connection and says "verified N". Exit status 0 only if every reply was right.
 *
 *   echo_client PORT N SECONDS
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  char want[40];
  size_t len, got;
  char buf[40];
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Send every connection its message for this round and wait until all echoes are back. */
static int round_trip(struct conn* cs, int n, int ep, int round) {
  for (int i = 0; i < n; i++) {
    cs[i].len = (size_t)snprintf(cs[i].want, sizeof cs[i].want, "round %d conn %d\n", round, i);
    cs[i].got = 0;
    if (write(cs[i].fd, cs[i].want, cs[i].len) != (ssize_t)cs[i].len) {
      fprintf(stderr, "echo_client: write on connection %d: %s\n", i, strerror(errno));
      return -1;
    }
  }
  int done = 0;
  double deadline = now() + 60;
  struct epoll_event evs[512];
  while (done < n) {
    if (now() > deadline) {
      fprintf(stderr, "echo_client: round %d: only %d of %d echoes within 60 s\n", round, done, n);
      return -1;
    }
    int k = epoll_wait(ep, evs, 512, 1000);
    for (int j = 0; j < k; j++) {
      struct conn* c = evs[j].data.ptr;
      if (c->got == c->len) continue;
      ssize_t r = read(c->fd, c->buf + c->got, c->len - c->got);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        fprintf(stderr, "echo_client: connection %d closed or failed in round %d\n", (int)(c - cs), round);
        return -1;
      }
      c->got += (size_t)r;
      if (c->got == c->len) {
        if (memcmp(c->buf, c->want, c->len) != 0) {
          fprintf(stderr, "echo_client: wrong echo on connection %d\n", (int)(c - cs));
          return -1;
        }
        done++;
      }
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: echo_client PORT N SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  double hold = atof(argv[3]);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct conn* cs = calloc((size_t)n, sizeof *cs);
  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr*)&sa, sizeof sa) != 0) {
      fprintf(stderr, "echo_client: connection %d: %s\n", i, strerror(errno));
      return 1;
    }
    cs[i].fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  if (round_trip(cs, n, ep, 1) != 0) return 1;
  printf("open %d\n", n);
  fflush(stdout);
  struct timespec ts = {(time_t)hold, (long)((hold - (double)(time_t)hold) * 1e9)};
  nanosleep(&ts, NULL);
  if (round_trip(cs, n, ep, 2) != 0) return 1;
  printf("verified %d\n", n);
  return 0;
}
