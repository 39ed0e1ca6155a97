/* A hand-written single-threaded epoll echo server: non-blocking sockets, level-triggered,
 * read then write straight back (waiting for EPOLLOUT only when a write comes up short).
 *
 *   epoll_echo PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct conn {
  int fd;
  size_t len, off;  /* bytes pending to write back */
  char buf[BUF];
};

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: epoll_echo PORT\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (bind(lfd, (struct sockaddr*)&sa, sizeof sa) || listen(lfd, 4096)) {
    perror("epoll_echo: bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("epoll_echo: listening on 127.0.0.1:%s\n", argv[1]);
  fflush(stdout);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct conn* c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          struct conn* nc = malloc(sizeof *nc);
          nc->fd = fd;
          nc->len = nc->off = 0;
          struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (c->len == 0) {
        ssize_t r = read(c->fd, c->buf, BUF);
        if (r < 0 && errno == EAGAIN) continue;
        if (r <= 0) {
          close(c->fd);
          free(c);
          continue;
        }
        c->len = (size_t)r;
        c->off = 0;
      }
      ssize_t w = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        close(c->fd);
        free(c);
        continue;
      }
      if (w > 0) c->off += (size_t)w;
      struct epoll_event e = {.data.ptr = c};
      if (c->off < c->len) {
        e.events = EPOLLOUT;  /* wait to finish this write before reading more */
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
      } else {
        if (evs[i].events & EPOLLOUT) {
          e.events = EPOLLIN;
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
        }
        c->len = 0;
      }
    }
  }
}
