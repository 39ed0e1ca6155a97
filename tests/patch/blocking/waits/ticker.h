/* Shared by the tests of issue 20's "other waits": a ticking thread (20 x 20 ms) that must
 * not be held up while another thread blocks ~1 s, and small helpers. Verdicts compare
 * orderings, never absolute times: "the ticks ended before the blocking call returned". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double g_ticks_end;
static pthread_t g_ticker;

static void* tick_main(void* arg) {
  (void)arg;
  for (int i = 0; i < 20; ++i) usleep(20000);
  g_ticks_end = now_s();
  return NULL;
}

static void ticker_start(void) {
  g_ticks_end = 0;
  if (pthread_create(&g_ticker, NULL, tick_main, NULL) != 0) {
    perror("pthread_create");
    exit(1);
  }
}

/* Joins the ticker; prints whether its ticks ended before `returned_at`. */
__attribute__((unused)) static void ticker_verdict(const char* what, double returned_at) {
  pthread_join(g_ticker, NULL);
  printf("%s: ticks %s the blocking call returned\n", what,
         g_ticks_end < returned_at ? "ended before" : "did NOT end before");
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

/* A pipe to hear from the child: it writes one byte when it holds what it holds. */
__attribute__((unused)) static void wait_byte(int fd) {
  char c;
  if (read(fd, &c, 1) != 1) die("read (child's byte)");
}

__attribute__((unused)) static void send_byte(int fd) {
  if (write(fd, "x", 1) != 1) die("write (to parent)");
}

__attribute__((unused)) static void reap(pid_t pid, const char* what) {
  /* Polled (usleep parks under the patch): a blocking waitpid is another engineer's part
   * of issue 20 and would stall the thread here. */
  int st;
  pid_t r;
  while ((r = waitpid(pid, &st, WNOHANG)) == 0) usleep(10000);
  if (r != pid) die("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) printf("%s: the child failed\n", what);
}

__attribute__((unused)) static const char* errname(int e) {
  switch (e) {
    case 0: return "0";
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case EACCES: return "EACCES";
    case EDEADLK: return "EDEADLK";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EOWNERDEAD: return "EOWNERDEAD";
    case EPERM: return "EPERM";
    case EBUSY: return "EBUSY";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case ENXIO: return "ENXIO";
    default: return strerror(e);
  }
}

static volatile sig_atomic_t g_handled;
static void on_signal(int sig) {
  (void)sig;
  ++g_handled;
}

/* The handler for `sig`, with or without SA_RESTART. */
__attribute__((unused)) static void handle(int sig, int restart) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) != 0) die("sigaction");
}
