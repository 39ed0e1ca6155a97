// A blocking socket that one thread sendfile()s into while three others read it and one
// asks its flags with fcntl(F_GETFL): none of them may see O_NONBLOCK, which the program
// never sets. Under ringlet-run the sendfile hook makes the socket non-blocking for the
// length of the call (patch/io.cpp); on two carriers the readers run at the same time, and
// a read that took that flag for the program's answered EAGAIN, and from then on blocked
// its whole carrier. The socket comes from socketpair(), so the patch asks the kernel for
// its flag (it is not private, patch/state.hpp). Run with two carriers (compare.sh
// --threads 2).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kReaders = 3 };

static int g_sv[2];
static int g_file;
static atomic_int g_stop;
static atomic_long g_eagain, g_other_errors, g_bytes, g_flag_seen, g_sent;

static void* sender(void* arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    off_t off = 0;
    ssize_t n = sendfile(g_sv[0], g_file, &off, 65536);
    if (n < 0) {
      perror("sendfile");
      exit(1);
    }
    atomic_fetch_add(&g_sent, n);
  }
  return NULL;
}

// Drains what the sender sent; after every read it sends a reader a byte, and at the end
// one 'Q' per reader.
static void* drainer(void* arg) {
  (void)arg;
  static char buf[65536];
  for (;;) {
    ssize_t n = read(g_sv[1], buf, sizeof buf);
    if (n < 0) {
      perror("drainer read");
      exit(1);
    }
    if (n == 0) break;
    if (write(g_sv[1], "b", 1) != 1) {
      perror("drainer write");
      exit(1);
    }
    if (fcntl(g_sv[0], F_GETFL) & O_NONBLOCK) atomic_fetch_add(&g_flag_seen, 1);
  }
  for (int i = 0; i < kReaders; ++i)
    if (write(g_sv[1], "Q", 1) != 1) {
      perror("drainer write");
      exit(1);
    }
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  for (;;) {
    char c;
    ssize_t n = read(g_sv[0], &c, 1);
    if (n < 0) {
      if (errno == EAGAIN) atomic_fetch_add(&g_eagain, 1);
      else atomic_fetch_add(&g_other_errors, 1);
      continue;
    }
    if (n == 0 || c == 'Q') break;
    atomic_fetch_add(&g_bytes, 1);
  }
  return NULL;
}

int main(void) {
  alarm(30);  // a backstop: the run takes about 1.5 s
  char path[] = "/tmp/ringlet-nonblock-window-XXXXXX";
  g_file = mkstemp(path);
  if (g_file < 0) {
    perror("mkstemp");
    return 1;
  }
  unlink(path);
  static char block[65536];
  memset(block, 'f', sizeof block);
  if (write(g_file, block, sizeof block) != (ssize_t)sizeof block) {
    perror("write");
    return 1;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, g_sv) != 0) {
    perror("socketpair");
    return 1;
  }
  pthread_t s, d, r[kReaders];
  for (int i = 0; i < kReaders; ++i) pthread_create(&r[i], NULL, reader, NULL);
  pthread_create(&d, NULL, drainer, NULL);
  pthread_create(&s, NULL, sender, NULL);
  usleep(1500 * 1000);
  atomic_store(&g_stop, 1);
  pthread_join(s, NULL);
  shutdown(g_sv[0], SHUT_WR);  // the drainer reads its end, then sends the 'Q's
  pthread_join(d, NULL);
  for (int i = 0; i < kReaders; ++i) pthread_join(r[i], NULL);
  printf("sent with sendfile: %s\n", atomic_load(&g_sent) > 0 ? "yes" : "no");
  printf("bytes the readers read: %s\n", atomic_load(&g_bytes) > 0 ? "some" : "none");
  printf("reads that answered EAGAIN: %ld\n", atomic_load(&g_eagain));
  printf("reads that failed otherwise: %ld\n", atomic_load(&g_other_errors));
  printf("F_GETFL showed O_NONBLOCK: %ld times\n", atomic_load(&g_flag_seen));
  return atomic_load(&g_eagain) || atomic_load(&g_other_errors) || atomic_load(&g_flag_seen) ? 1 : 0;
}
