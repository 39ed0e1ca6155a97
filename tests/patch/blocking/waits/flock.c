/* flock(LOCK_EX) on a file another process holds for 1 s (issue 20): a ticking thread is not
 * held up; a handler without SA_RESTART ends the wait with EINTR, one with SA_RESTART lets it
 * go on; LOCK_NB answers EWOULDBLOCK at once. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/file.h>

#include "ticker.h"

static char g_path[] = "/tmp/ringlet-flock-XXXXXX";

/* A child that takes `op` on its own open of the file, says so, holds it `hold_us`. */
static pid_t holder(int op, useconds_t hold_us, int* pipe_rd) {
  int p[2];
  if (pipe(p) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[0]);
    int fd = open(g_path, O_RDWR);
    if (fd < 0 || flock(fd, op) != 0) _exit(1);
    send_byte(p[1]);
    usleep(hold_us);
    _exit(0);
  }
  close(p[1]);
  *pipe_rd = p[0];
  return pid;
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  int tmp = mkstemp(g_path);
  if (tmp < 0) die("mkstemp");
  close(tmp);
  int fd = open(g_path, O_RDWR);
  if (fd < 0) die("open");

  int rd;
  pid_t pid = holder(LOCK_EX, 1000000, &rd);
  wait_byte(rd);
  int r = flock(fd, LOCK_EX | LOCK_NB);
  printf("LOCK_EX|LOCK_NB while held: %d %s\n", r, r ? errname(errno) : "0");
  ticker_start();
  r = flock(fd, LOCK_EX);
  double t = now_s();
  printf("LOCK_EX: %d %s\n", r, r ? errname(errno) : "0");
  ticker_verdict("flock held by another process for 1 s", t);
  flock(fd, LOCK_UN);
  reap(pid, "holder");
  close(rd);

  /* A shared lock waits for an exclusive holder, too. */
  pid = holder(LOCK_EX, 1000000, &rd);
  wait_byte(rd);
  ticker_start();
  r = flock(fd, LOCK_SH);
  t = now_s();
  printf("LOCK_SH: %d %s\n", r, r ? errname(errno) : "0");
  ticker_verdict("flock LOCK_SH behind an exclusive holder", t);
  flock(fd, LOCK_UN);
  reap(pid, "holder");
  close(rd);

  /* Interrupted: held for 3 s, SIGALRM after 1 s without SA_RESTART. */
  pid = holder(LOCK_EX, 3000000, &rd);
  wait_byte(rd);
  handle(SIGALRM, 0);
  g_handled = 0;
  alarm(1);
  r = flock(fd, LOCK_EX);
  printf("LOCK_EX, handler without SA_RESTART: %d %s, handler ran %d time(s)\n", r, r ? errname(errno) : "0",
         (int)g_handled);
  r = flock(fd, LOCK_EX | LOCK_NB);
  printf("still held by the other process: %s\n", r ? errname(errno) : "no");
  reap(pid, "holder");
  close(rd);

  /* With SA_RESTART: held 2 s, the handler runs at 1 s, the lock comes when released. */
  pid = holder(LOCK_EX, 2000000, &rd);
  wait_byte(rd);
  handle(SIGALRM, 1);
  g_handled = 0;
  alarm(1);
  r = flock(fd, LOCK_EX);
  printf("LOCK_EX, handler with SA_RESTART: %d %s, handler ran %d time(s)\n", r, r ? errname(errno) : "0",
         (int)g_handled);
  reap(pid, "holder");
  close(rd);
  signal(SIGALRM, SIG_DFL);
  alarm(60);

  r = flock(-1, LOCK_EX);
  printf("bad descriptor: %d %s\n", r, r ? errname(errno) : "0");
  close(fd);
  unlink(g_path);
  return 0;
}
