/* A plain C program that waits with poll, select and nanosleep, with and without timeouts.
   Run natively and under ringlet-run by the patch tests: its output must be the same. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* "ok" if the wait took about `want` ms (the machine may be slow: generous above). */
static const char* about(double took, double want) {
  return took >= want - 5 && took < want + 1000 ? "ok" : "OFF";
}

int main(void) {
  int p[2];
  if (pipe(p) != 0) return 1;
  struct pollfd pf = {p[0], POLLIN, 0};
  double t0 = now_ms();
  int r = poll(&pf, 1, 100);
  printf("poll timeout: %d revents=%d time %s\n", r, pf.revents, about(now_ms() - t0, 100));
  if (write(p[1], "x", 1) != 1) return 1;
  r = poll(&pf, 1, 1000);
  printf("poll ready: %d revents=%d\n", r, pf.revents);
  char c;
  if (read(p[0], &c, 1) != 1) return 1;
  r = poll(&pf, 1, 0);
  printf("poll zero timeout: %d\n", r);
  struct pollfd bad = {1000, POLLIN, 0};
  r = poll(&bad, 1, 1000);
  printf("poll bad fd: %d revents=%d\n", r, bad.revents);
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(p[0], &rs);
  struct timeval tv = {0, 50000};
  t0 = now_ms();
  r = select(p[0] + 1, &rs, NULL, NULL, &tv);
  printf("select timeout: %d set=%d time %s\n", r, FD_ISSET(p[0], &rs), about(now_ms() - t0, 50));
  struct timespec ts = {0, 50000000};
  t0 = now_ms();
  r = nanosleep(&ts, NULL);
  printf("nanosleep: %d time %s\n", r, about(now_ms() - t0, 50));
  pid_t pid = fork();
  if (pid == 0) {
    usleep(150000);
    _exit(write(p[1], "y", 1) == 1 ? 0 : 1);
  }
  t0 = now_ms();
  r = poll(&pf, 1, 5000);
  printf("poll for a child's write: %d revents=%d time %s\n", r, pf.revents, about(now_ms() - t0, 150));
  int status = 0;
  waitpid(pid, &status, 0);
  printf("child exit %d\n", WEXITSTATUS(status));
  r = (int)read(p[0], &c, 1);
  printf("read %d %c\n", r, c);
  close(p[1]);
  r = (int)read(p[0], &c, 1);
  printf("read at EOF %d\n", r);
  errno = 0;
  r = (int)read(p[1], &c, 1);
  printf("read closed fd %d errno=%s\n", r, errno == EBADF ? "EBADF" : "other");
  return 5;
}
