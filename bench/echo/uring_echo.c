/* A hand-written single-threaded io_uring echo server: the practical ceiling for ringlet's
 * design (the same ring setup, one recv and one send in flight per connection, completions
 * reaped in batches, one io_uring_enter per loop). No fibers, no abstraction.
 *
 *   uring_echo PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { ACCEPT = 1, RECV = 2, SEND = 3 };
#define BUF 16384

struct conn {
  int fd;
  int kind;
  size_t len, off;
  char buf[BUF];
};

static struct io_uring ring;
static struct conn acceptor = {.kind = ACCEPT};

static struct io_uring_sqe* sqe_get(void) {
  struct io_uring_sqe* s;
  while (!(s = io_uring_get_sqe(&ring))) io_uring_submit(&ring);
  return s;
}

static void post_recv(struct conn* c) {
  struct io_uring_sqe* s = sqe_get();
  c->kind = RECV;
  io_uring_prep_recv(s, c->fd, c->buf, BUF, 0);
  io_uring_sqe_set_data(s, c);
}

static void post_send(struct conn* c) {
  struct io_uring_sqe* s = sqe_get();
  c->kind = SEND;
  io_uring_prep_send(s, c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, c);
}

static void post_accept(int lfd) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(s, &acceptor);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uring_echo PORT\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (bind(lfd, (struct sockaddr*)&sa, sizeof sa) || listen(lfd, 4096)) {
    perror("uring_echo: bind/listen");
    return 1;
  }
  struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
                              .cq_entries = 4096};
  int r = io_uring_queue_init_params(256, &ring, &p);
  if (r < 0) {
    fprintf(stderr, "uring_echo: io_uring: %s\n", strerror(-r));
    return 1;
  }
  printf("uring_echo: listening on 127.0.0.1:%s\n", argv[1]);
  fflush(stdout);
  post_accept(lfd);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      n++;
      struct conn* c = io_uring_cqe_get_data(cqe);
      int res = cqe->res;
      if (c->kind == ACCEPT) {
        if (res >= 0) {
          struct conn* nc = malloc(sizeof *nc);
          nc->fd = res;
          post_recv(nc);
        }
        post_accept(lfd);
      } else if (c->kind == RECV) {
        if (res <= 0) {
          close(c->fd);
          free(c);
          continue;
        }
        c->len = (size_t)res;
        c->off = 0;
        post_send(c);
      } else {
        if (res < 0) {
          close(c->fd);
          free(c);
          continue;
        }
        c->off += (size_t)res;
        if (c->off < c->len) post_send(c);
        else post_recv(c);
      }
    }
    io_uring_cq_advance(&ring, n);
  }
}
