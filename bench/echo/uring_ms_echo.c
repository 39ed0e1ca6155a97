/* A hand-written single-threaded io_uring echo server with the kernel's newer tools: one
 * multishot accept for the listener, one multishot receive per connection drawing from a
 * provided-buffer ring, and the echo sent straight from the buffer the data landed in (the
 * buffer is free again when its send is complete; the ring is topped up from the buffers
 * freed last). Ring: SINGLE_ISSUER|DEFER_TASKRUN
 * and a registered ring fd; one io_uring_enter per loop, completions reaped in batches.
 *
 *   uring_ms_echo PORT
 *
 * Per connection at most one send is in flight (two sends on one socket may complete out of
 * order); received buffers wait in a FIFO behind it. A short send is sent on from where it
 * stopped. A multishot receive ends without IORING_CQE_F_MORE: on -ENOBUFS (every buffer is
 * held by a pending send) it is re-armed once a buffer comes back; on data it is re-armed at
 * once; on 0 (the peer closed) or an error the connection closes when its last send is done.
 * A failed send shuts the socket down, which ends the receive. A message longer than a
 * buffer (16 KiB, as the other C servers read) is echoed in pieces, as theirs is.
 *
 * Where the kernel lacks multishot receive or provided-buffer rings (Linux < 6.0), it prints
 * "uring_ms_echo: skip: REASON" and exits with 77.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NBUFS
#define NBUFS 1024 /* a power of two; -DNBUFS=, -DPOSTED= and -DBUFSZ= try others */
#endif
#ifndef POSTED
#define POSTED 256 /* buffers offered to the kernel at a time */
#endif
#ifndef BUFSZ
#define BUFSZ 16384 /* as the other C servers read: a message up to this size is one send */
#endif
#define BGID 0

enum { ACCEPT = 1, RECV = 2, SEND = 3 }; /* the low bits of user_data */

struct conn {
  int fd;
  int recv_armed; /* a multishot receive is in flight */
  int sending;    /* the send of the head buffer is in flight */
  int closing;    /* EOF or an error seen: close when idle */
  int failed;     /* an error: nothing more is sent */
  int starved;    /* on the starved list: re-arm the receive when a buffer returns */
  int head, tail; /* FIFO of buffer ids waiting to be sent (-1: empty) */
  struct conn* next_starved;
};

struct pend {
  unsigned len, off;
  int next;
};

static struct io_uring ring;
static struct io_uring_buf_ring* br;
static char* bufs;
static struct pend pend[NBUFS];
static int free_stack[NBUFS], nfree; /* buffers back from their sends, the latest on top */
static int posted;                    /* buffers in the ring, not yet taken by a receive */
static struct conn* starved;

static void skip(const char* why) {
  printf("uring_ms_echo: skip: %s\n", why);
  fflush(stdout);
  exit(77);
}

static struct io_uring_sqe* sqe_get(void) {
  struct io_uring_sqe* s;
  while (!(s = io_uring_get_sqe(&ring))) io_uring_submit(&ring);
  return s;
}

static void* tag(struct conn* c, int kind) { return (void*)((uintptr_t)c | (uintptr_t)kind); }

static void arm_accept(int lfd) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_multishot_accept(s, lfd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data(s, (void*)(uintptr_t)ACCEPT);
}

static void arm_recv(struct conn* c) {
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = BGID;
  io_uring_sqe_set_data(s, tag(c, RECV));
  c->recv_armed = 1;
}

static void give_back(int bid) { free_stack[nfree++] = bid; }

/* Top the ring up to POSTED from the top of the free stack: the buffers used last, still in
 * the cache and the TLB, go back first (the ring itself is a FIFO: offering all NBUFS would
 * walk every message through a different buffer). Returns how many went in. */
static int top_up(void) {
  int n = 0;
  while (posted < POSTED && nfree > 0) {
    int bid = free_stack[--nfree];
    io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, (unsigned short)bid, io_uring_buf_ring_mask(NBUFS), n);
    n++;
    posted++;
  }
  if (n) io_uring_buf_ring_advance(br, n);
  return n;
}

static void send_head(struct conn* c) {
  struct pend* p = &pend[c->head];
  struct io_uring_sqe* s = sqe_get();
  io_uring_prep_send(s, c->fd, bufs + (size_t)c->head * BUFSZ + p->off, p->len - p->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, tag(c, SEND));
  c->sending = 1;
}

static void maybe_close(struct conn* c) {
  if (!c->closing || c->recv_armed || c->sending || c->starved) return;
  close(c->fd);
  free(c);
}

/* A send or the receive failed: drop what waits (a buffer whose send is in flight stays
 * the kernel's until that send completes), end the receive. */
static void fail(struct conn* c) {
  c->failed = 1;
  int b = c->sending ? pend[c->head].next : c->head;
  while (b >= 0) {
    int next = pend[b].next;
    give_back(b);
    b = next;
  }
  if (c->sending) {
    pend[c->head].next = -1;
    c->tail = c->head;
  } else {
    c->head = c->tail = -1;
  }
  if (!c->closing) {
    c->closing = 1;
    if (c->recv_armed) shutdown(c->fd, SHUT_RDWR); /* the multishot receive ends with 0 */
  }
}

static void on_recv(struct conn* c, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE)) c->recv_armed = 0;
  if (res > 0) {
    int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
    posted--;
    if (c->closing) {
      give_back(bid);
    } else {
      pend[bid] = (struct pend){.len = (unsigned)res, .off = 0, .next = -1};
      if (c->tail >= 0) pend[c->tail].next = bid;
      else c->head = bid;
      c->tail = bid;
      if (!c->sending) send_head(c);
    }
    if (!c->recv_armed && !c->closing) arm_recv(c); /* ended with data: go on */
  } else if (res == -ENOBUFS && !c->closing) {
    if (!c->starved) { /* every buffer waits on a send: re-arm once one comes back */
      c->starved = 1;
      c->next_starved = starved;
      starved = c;
    }
  } else if (!c->recv_armed) { /* 0: the peer closed (what waits is still sent); or an error */
    if (res < 0) fail(c);
    c->closing = 1;
  }
  maybe_close(c);
}

static void on_send(struct conn* c, int res) {
  c->sending = 0;
  if (res < 0 || c->failed) {
    fail(c);
  } else {
    struct pend* p = &pend[c->head];
    p->off += (unsigned)res;
    if (p->off == p->len) {
      int bid = c->head;
      c->head = p->next;
      if (c->head < 0) c->tail = -1;
      give_back(bid);
    }
    if (c->head >= 0) send_head(c); /* the rest of a short send, or the next buffer */
  }
  maybe_close(c);
}

/* Multishot receive with a provided-buffer ring (Linux 6.0): one byte through a socket pair. */
static void probe(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) skip("socketpair failed");
  struct conn c = {.fd = sv[0], .head = -1, .tail = -1};
  arm_recv(&c);
  io_uring_submit(&ring);
  if (write(sv[1], "x", 1) != 1) skip("socketpair write failed");
  struct io_uring_cqe* cqe;
  if (io_uring_wait_cqe(&ring, &cqe)) skip("io_uring_wait_cqe failed");
  int res = cqe->res;
  unsigned flags = cqe->flags;
  io_uring_cqe_seen(&ring, cqe);
  if (res != 1 || !(flags & IORING_CQE_F_BUFFER))
    skip(res < 0 ? "the kernel lacks multishot receive with buffer select (Linux 6.0)"
                 : "multishot receive returned no provided buffer");
  if (!(flags & IORING_CQE_F_MORE)) skip("the kernel ends a multishot receive after one completion");
  posted--;
  give_back((int)(flags >> IORING_CQE_BUFFER_SHIFT));
  top_up();
  close(sv[1]); /* the receive ends with 0 */
  if (io_uring_wait_cqe(&ring, &cqe)) skip("io_uring_wait_cqe failed");
  io_uring_cqe_seen(&ring, cqe);
  close(sv[0]);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: uring_ms_echo PORT\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
                              .cq_entries = 16384};
  int r = io_uring_queue_init_params(256, &ring, &p);
  if (r == -EINVAL) skip("the kernel lacks IORING_SETUP_SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1)");
  if (r < 0) {
    char why[128];
    snprintf(why, sizeof why, "io_uring: %s", strerror(-r));
    skip(why);
  }
  io_uring_register_ring_fd(&ring); /* refused (Linux < 5.18): the plain fd serves */
  /* The provided-buffer ring: entries and buffers in memory of our own (liburing 2.3 has no
   * io_uring_setup_buf_ring). */
  br = mmap(NULL, NBUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  bufs = mmap(NULL, (size_t)NBUFS * BUFSZ, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (br == MAP_FAILED || bufs == MAP_FAILED) {
    perror("uring_ms_echo: mmap");
    return 1;
  }
  io_uring_buf_ring_init(br);
  struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)br, .ring_entries = NBUFS, .bgid = BGID};
  r = io_uring_register_buf_ring(&ring, &reg, 0);
  if (r < 0) skip("the kernel lacks provided-buffer rings (Linux 5.19)");
  for (int i = NBUFS - 1; i >= 0; i--) give_back(i);
  top_up();
  probe();

  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (bind(lfd, (struct sockaddr*)&sa, sizeof sa) || listen(lfd, 4096)) {
    perror("uring_ms_echo: bind/listen");
    return 1;
  }
  printf("uring_ms_echo: listening on 127.0.0.1:%s\n", argv[1]);
  fflush(stdout);
  arm_accept(lfd);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      n++;
      uintptr_t ud = (uintptr_t)io_uring_cqe_get_data(cqe);
      int kind = (int)(ud & 3);
      struct conn* c = (struct conn*)(ud & ~(uintptr_t)3);
      if (kind == ACCEPT) {
        if (cqe->res >= 0) {
          struct conn* nc = calloc(1, sizeof *nc);
          nc->fd = cqe->res;
          nc->head = nc->tail = -1;
          arm_recv(nc);
        } else if (cqe->res == -EINVAL) {
          fprintf(stderr, "uring_ms_echo: multishot accept: %s\n", strerror(-cqe->res));
          return 1;
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
      } else if (kind == RECV) {
        on_recv(c, cqe->res, cqe->flags);
      } else {
        on_send(c, cqe->res);
      }
    }
    io_uring_cq_advance(&ring, n);
    if (top_up()) {
      while (starved) { /* buffers are back: the starved receives again */
        struct conn* c = starved;
        starved = c->next_starved;
        c->starved = 0;
        if (c->closing) maybe_close(c);
        else arm_recv(c);
      }
    }
  }
}
