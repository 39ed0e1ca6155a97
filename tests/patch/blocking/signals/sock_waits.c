/* The socket calls that used to pass through (issue 20): recvmmsg, sendmmsg, epoll_pwait2,
   splice and tee, and accept on a listener made blocking after the fact. Each waits ~1 s for
   another thread while a third ticks; the verdict is by ordering (the ticks ended before the
   call returned). Under ringlet-run before issue 20 each blocked the OS thread, so the other
   thread never ran. One case per run: sock_waits CASE. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ticker.h"

static int peer_fd;
static struct sockaddr_in peer_addr;

static void* udp_sender(void* arg) {  /* arg: how many datagrams, 200 ms apart, after 1 s */
  long n = (long)arg;
  sleep_ms(1000);
  for (long i = 0; i < n; ++i) {
    if (i) sleep_ms(200);
    char msg[32];
    snprintf(msg, sizeof msg, "dgram %ld", i);
    sendto(peer_fd, msg, strlen(msg), 0, (struct sockaddr*)&peer_addr, sizeof peer_addr);
  }
  return NULL;
}

static int udp_pair(int* rx) {
  *rx = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(*rx, (struct sockaddr*)&a, sizeof a);
  socklen_t len = sizeof peer_addr;
  getsockname(*rx, (struct sockaddr*)&peer_addr, &len);
  peer_fd = socket(AF_INET, SOCK_DGRAM, 0);
  return 0;
}

static int case_recvmmsg(void) {
  int rx;
  udp_pair(&rx);
  char bufs[4][32];
  struct iovec iov[4];
  struct mmsghdr m[4];
  memset(m, 0, sizeof m);
  for (int i = 0; i < 4; ++i) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof bufs[i];
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
  }
  /* vlen 2, no flags: waits for both (the second comes 200 ms after the first) */
  pthread_t a = start_ticker(), b;
  start_quiet(&b, udp_sender, (void*)2L);
  int r = recvmmsg(rx, m, 2, 0, NULL);
  printf("recvmmsg of 2: %d: '%.*s' '%.*s'; %s\n", r, (int)m[0].msg_len, bufs[0], (int)m[1].msg_len, bufs[1],
         ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  /* MSG_WAITFORONE: what is there after the first */
  a = start_ticker();
  start_quiet(&b, udp_sender, (void*)1L);
  r = recvmmsg(rx, m, 4, MSG_WAITFORONE, NULL);
  printf("recvmmsg MSG_WAITFORONE of 4: %d: '%.*s'; %s\n", r, (int)m[0].msg_len, bufs[0], ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  /* a 200 ms timeout: checked after each datagram (it does not bound the wait for the first) */
  a = start_ticker();
  start_quiet(&b, udp_sender, (void*)2L);
  struct timespec t = {0, 200 * 1000 * 1000};
  r = recvmmsg(rx, m, 2, 0, &t);
  printf("recvmmsg of 2 with a 200 ms timeout: %d: '%.*s'; time left %s; %s\n", r, (int)m[0].msg_len, bufs[0],
         t.tv_sec == 0 && t.tv_nsec == 0 ? "0" : "some", ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  r = recvmmsg(rx, m, 2, MSG_WAITFORONE, NULL);  /* the second of those, already there */
  printf("recvmmsg, one waiting: %d: '%.*s'\n", r, (int)m[0].msg_len, bufs[0]);
  /* MSG_DONTWAIT on an empty socket: EAGAIN */
  errno = 0;
  r = recvmmsg(rx, m, 2, MSG_DONTWAIT, NULL);
  printf("recvmmsg MSG_DONTWAIT: %d %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  /* SO_RCVTIMEO: EAGAIN after it */
  struct timeval tv = {0, 300 * 1000};
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  errno = 0;
  r = recvmmsg(rx, m, 2, 0, NULL);
  printf("recvmmsg with SO_RCVTIMEO: %d %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  return 0;
}

static int dgram_pair[2];
static atomic_int dgrams_sent;

static void* dgram_drainer(void* arg) {
  (void)arg;
  sleep_ms(1000);
  char buf[256];
  int got = 0;
  while (got < atomic_load(&dgrams_sent) + 3) {
    if (recv(dgram_pair[1], buf, sizeof buf, 0) < 0) break;
    ++got;
  }
  return NULL;
}

static int case_sendmmsg(void) {
  socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram_pair);
  char buf[200];
  memset(buf, 'x', sizeof buf);
  int n = 0;
  while (send(dgram_pair[0], buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;  /* full */
  atomic_store(&dgrams_sent, n);
  printf("sendmmsg: the socket is full: %s\n", errno == EAGAIN ? "yes" : strerror(errno));
  struct iovec iov[3];
  struct mmsghdr m[3];
  memset(m, 0, sizeof m);
  for (int i = 0; i < 3; ++i) {
    iov[i].iov_base = buf;
    iov[i].iov_len = 100;
    m[i].msg_hdr.msg_iov = &iov[i];
    m[i].msg_hdr.msg_iovlen = 1;
  }
  errno = 0;
  int r = sendmmsg(dgram_pair[0], m, 3, MSG_DONTWAIT);
  printf("sendmmsg MSG_DONTWAIT on a full socket: %d %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  pthread_t a = start_ticker(), b;
  start_quiet(&b, dgram_drainer, NULL);
  r = sendmmsg(dgram_pair[0], m, 3, 0);
  printf("sendmmsg of 3: %d, lengths %u %u %u; %s\n", r, m[0].msg_len, m[1].msg_len, m[2].msg_len, ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  return 0;
}

static int pipe_w;

static void* pipe_writer(void* arg) {
  (void)arg;
  sleep_ms(1000);
  if (write(pipe_w, "hello", 5) != 5) abort();
  return NULL;
}

static int case_epoll_pwait2(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  pipe_w = p[1];
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
  epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  struct epoll_event out[4];
  pthread_t a = start_ticker(), b;
  struct timespec t = {1, 0};
  int r = epoll_pwait2(ep, out, 4, &t, NULL);
  printf("epoll_pwait2, 1 s and nothing: %d; %s\n", r, ticks_verdict());
  pthread_join(a, NULL);
  a = start_ticker();
  start_quiet(&b, pipe_writer, NULL);
  struct timespec t2 = {20, 0};
  r = epoll_pwait2(ep, out, 4, &t2, NULL);
  printf("epoll_pwait2, written after 1 s: %d, %s; %s\n", r,
         r == 1 && out[0].data.fd == p[0] && (out[0].events & EPOLLIN) ? "the pipe readable" : "other",
         ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  r = epoll_pwait2(ep, out, 4, NULL, NULL);
  printf("epoll_pwait2, no timeout, ready: %d\n", r);
  struct timespec bad = {0, -1};
  errno = 0;
  r = epoll_pwait2(ep, out, 4, &bad, NULL);
  printf("epoll_pwait2, bad timeout: %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));
  return 0;
}

static int stream_pair[2];

static void* sock_writer(void* arg) {
  (void)arg;
  sleep_ms(1000);
  if (write(stream_pair[1], "hello", 5) != 5) abort();
  return NULL;
}

static void* sock_reader(void* arg) {  /* reads what the splice into the socket brings */
  char* out = arg;
  ssize_t n = read(stream_pair[1], out, 15);
  out[n > 0 ? n : 0] = 0;
  return NULL;
}

static int case_splice(void) {
  socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair);
  int p[2];
  if (pipe(p) != 0) return 1;
  /* socket -> pipe: waits for the socket */
  pthread_t a = start_ticker(), b;
  start_quiet(&b, sock_writer, NULL);
  ssize_t r = splice(stream_pair[0], NULL, p[1], NULL, 64, 0);
  char buf[16] = {0};
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  printf("splice socket->pipe: %zd, the pipe has '%.*s'; %s\n", r, (int)(n > 0 ? n : 0), buf, ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  /* SPLICE_F_NONBLOCK on an empty socket: EAGAIN */
  errno = 0;
  r = splice(stream_pair[0], NULL, p[1], NULL, 64, SPLICE_F_NONBLOCK);
  printf("splice SPLICE_F_NONBLOCK, nothing: %zd %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  /* pipe -> socket: waits for the pipe */
  pipe_w = p[1];
  char got[16];
  a = start_ticker();
  start_quiet(&b, pipe_writer, NULL);
  pthread_t c;
  start_quiet(&c, sock_reader, got);
  r = splice(p[0], NULL, stream_pair[0], NULL, 64, 0);
  printf("splice pipe->socket: %zd; %s\n", r, ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_join(c, NULL);
  printf("splice pipe->socket: the peer read '%s'\n", got);
  return 0;
}

static int case_tee(void) {
  int p[2], q[2];
  if (pipe(p) != 0 || pipe(q) != 0) return 1;
  pipe_w = p[1];
  pthread_t a = start_ticker(), b;
  start_quiet(&b, pipe_writer, NULL);
  ssize_t r = tee(p[0], q[1], 64, 0);
  printf("tee: %zd; %s\n", r, ticks_verdict());
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  char x[16] = {0}, y[16] = {0};
  ssize_t nx = read(p[0], x, sizeof x - 1), ny = read(q[0], y, sizeof y - 1);
  printf("tee: the source still has '%.*s', the copy '%.*s'\n", (int)(nx > 0 ? nx : 0), x, (int)(ny > 0 ? ny : 0), y);
  errno = 0;
  r = tee(p[0], q[1], 64, SPLICE_F_NONBLOCK);
  printf("tee SPLICE_F_NONBLOCK, nothing: %zd %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  return 0;
}

static struct sockaddr_in listen_addr;

static void* connector(void* arg) {
  (void)arg;
  sleep_ms(1000);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  connect(s, (struct sockaddr*)&listen_addr, sizeof listen_addr);
  close(s);
  return NULL;
}

static int case_accept(int how) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(l, (struct sockaddr*)&a, sizeof a);
  listen(l, 8);
  socklen_t len = sizeof listen_addr;
  getsockname(l, (struct sockaddr*)&listen_addr, &len);
  errno = 0;
  int r = accept(l, NULL, NULL);
  printf("accept, non-blocking listener: %d %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  if (how == 0) {
    fcntl(l, F_SETFL, fcntl(l, F_GETFL) & ~O_NONBLOCK);
  } else {
    int off = 0;
    ioctl(l, FIONBIO, &off);
  }
  pthread_t t = start_ticker(), b;
  start_quiet(&b, connector, NULL);
  r = accept(l, NULL, NULL);
  printf("accept after %s: %s; %s\n", how == 0 ? "fcntl(F_SETFL) cleared O_NONBLOCK" : "ioctl(FIONBIO, 0)",
         r >= 0 ? "a connection" : strerror(errno), ticks_verdict());
  pthread_join(t, NULL);
  pthread_join(b, NULL);
  return 0;
}

int main(int argc, char** argv) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  signal(SIGPIPE, SIG_IGN);
  const char* c = argc > 1 ? argv[1] : "";
  if (!strcmp(c, "recvmmsg")) return case_recvmmsg();
  if (!strcmp(c, "sendmmsg")) return case_sendmmsg();
  if (!strcmp(c, "epoll_pwait2")) return case_epoll_pwait2();
  if (!strcmp(c, "splice")) return case_splice();
  if (!strcmp(c, "tee")) return case_tee();
  if (!strcmp(c, "accept-fcntl")) return case_accept(0);
  if (!strcmp(c, "accept-ioctl")) return case_accept(1);
  fprintf(stderr, "usage: sock_waits CASE\n");
  return 2;
}
