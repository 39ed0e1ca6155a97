// A call that succeeds leaves errno as it found it, also when it waited: read and recv that
// wait for data, a write into a full pipe that waits for room, accept and connect that wait.
// (Under the patch such a call first makes an attempt that cannot block, whose EAGAIN must
// not show through.) stdio's reads and writes rely on it: glibc takes a read's errno for
// the FILE's error state.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_fd;
static void* late_write(void* a) {
  (void)a;
  usleep(200 * 1000);
  if (write(g_fd, "x", 1) != 1) perror("write");
  return NULL;
}
static char g_sink[1 << 20];
static void* late_drain(void* a) {
  (void)a;
  usleep(200 * 1000);
  if (read(g_fd, g_sink, sizeof g_sink) <= 0) perror("read");
  return NULL;
}
static int g_port;
static void* late_connect(void* a) {
  (void)a;
  usleep(200 * 1000);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr*)&sa, sizeof sa)) perror("connect");
  if (write(s, "y", 1) != 1) perror("write");
  usleep(100 * 1000);
  close(s);
  return NULL;
}

static int report(const char* what, int ok) {
  printf("%s: succeeded %s, errno %s\n", what, ok ? "yes" : "NO",
         errno == 0 ? "kept (0)" : strerror(errno));
  return ok && errno == 0 ? 0 : 1;
}

int main(void) {
  alarm(60);
  int bad = 0;
  pthread_t t;
  char c;

  int p[2];
  if (pipe(p)) return 2;
  g_fd = p[1];
  pthread_create(&t, NULL, late_write, NULL);
  errno = 0;
  bad |= report("read that waited", read(p[0], &c, 1) == 1);
  pthread_join(t, NULL);

  // Fill the pipe, then write one more byte: it waits until the other thread drains.
  int full = 0;
  char chunk[4096] = {0};
  int fl = fcntl(p[1], F_GETFL);
  fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
  while (write(p[1], chunk, sizeof chunk) > 0) ++full;
  fcntl(p[1], F_SETFL, fl);
  g_fd = p[0];
  pthread_create(&t, NULL, late_drain, NULL);
  errno = 0;
  bad |= report("write that waited for room", full > 0 && write(p[1], "z", 1) == 1);
  pthread_join(t, NULL);
  close(p[0]);
  close(p[1]);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (bind(ls, (struct sockaddr*)&sa, sizeof sa) || listen(ls, 4) ||
      getsockname(ls, (struct sockaddr*)&sa, &len))
    return 2;
  g_port = ntohs(sa.sin_port);
  pthread_create(&t, NULL, late_connect, NULL);
  errno = 0;
  int s = accept(ls, NULL, NULL);
  bad |= report("accept that waited", s >= 0);
  errno = 0;
  bad |= report("recv that waited", s >= 0 && recv(s, &c, 1, 0) == 1);
  pthread_join(t, NULL);
  close(s);
  close(ls);
  return bad;
}
