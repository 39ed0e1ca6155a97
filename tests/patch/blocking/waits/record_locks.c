/* A daemon's pidfile lock (issue 20): fcntl(F_SETLKW), fcntl(F_OFD_SETLKW) and
 * lockf(F_LOCK) on a file another process holds for 1 s; a ticking thread is not held up.
 * F_SETLKW ended by a handler without SA_RESTART: EINTR. Two processes each waiting for the
 * other's record lock: the kernel's EDEADLK. */
#define _GNU_SOURCE
#include <fcntl.h>

#include "ticker.h"

static char g_path[] = "/tmp/ringlet-pidfile-XXXXXX";

static int setlk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fcntl(fd, cmd, &fl);
}

/* A child holding a write lock on the whole file for hold_us. */
static pid_t holder(useconds_t hold_us, int* pipe_rd) {
  int p[2];
  if (pipe(p) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[0]);
    int fd = open(g_path, O_RDWR);
    if (fd < 0 || setlk(fd, F_SETLK, F_WRLCK, 0, 0) != 0) _exit(1);
    send_byte(p[1]);
    usleep(hold_us);
    _exit(0);
  }
  close(p[1]);
  *pipe_rd = p[0];
  return pid;
}

static void report(const char* what, int r) { printf("%s: %d %s\n", what, r, r ? errname(errno) : "0"); }

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  int fd = mkstemp(g_path);
  if (fd < 0) die("mkstemp");
  if (write(fd, "12345\n", 6) != 6) die("write");

  int rd;
  pid_t pid = holder(1000000, &rd);
  wait_byte(rd);
  int r = setlk(fd, F_SETLK, F_WRLCK, 0, 0);
  printf("F_SETLK while held: %d %s\n", r, r ? (errno == EACCES || errno == EAGAIN ? "EAGAIN/EACCES" : errname(errno)) : "0");
  ticker_start();
  r = setlk(fd, F_SETLKW, F_WRLCK, 0, 0);
  double t = now_s();
  report("F_SETLKW", r);
  ticker_verdict("F_SETLKW on a pidfile held for 1 s", t);
  setlk(fd, F_SETLK, F_UNLCK, 0, 0);
  reap(pid, "holder");
  close(rd);

  pid = holder(1000000, &rd);
  wait_byte(rd);
  ticker_start();
  r = setlk(fd, F_OFD_SETLKW, F_RDLCK, 0, 0);
  t = now_s();
  report("F_OFD_SETLKW", r);
  ticker_verdict("F_OFD_SETLKW on a pidfile held for 1 s", t);
  setlk(fd, F_OFD_SETLK, F_UNLCK, 0, 0);
  reap(pid, "holder");
  close(rd);

  pid = holder(1000000, &rd);
  wait_byte(rd);
  lseek(fd, 0, SEEK_SET);
  ticker_start();
  r = lockf(fd, F_LOCK, 0);
  t = now_s();
  report("lockf(F_LOCK)", r);
  ticker_verdict("lockf on a pidfile held for 1 s", t);
  r = lockf(fd, F_TEST, 0);
  report("lockf(F_TEST) by the holder", r);
  lockf(fd, F_ULOCK, 0);
  reap(pid, "holder");
  close(rd);

  /* Interrupted: held 3 s, SIGALRM at 1 s, no SA_RESTART. */
  pid = holder(3000000, &rd);
  wait_byte(rd);
  handle(SIGALRM, 0);
  g_handled = 0;
  alarm(1);
  r = setlk(fd, F_SETLKW, F_WRLCK, 0, 0);
  printf("F_SETLKW, handler without SA_RESTART: %d %s, handler ran %d time(s)\n", r, r ? errname(errno) : "0",
         (int)g_handled);
  reap(pid, "holder");
  close(rd);
  signal(SIGALRM, SIG_DFL);
  alarm(60);

  /* Deadlock: we hold byte 0, the child holds byte 1 and waits for byte 0; our wait for
   * byte 1 would close the cycle. */
  if (setlk(fd, F_SETLK, F_WRLCK, 0, 1) != 0) die("lock byte 0");
  int p[2];
  if (pipe(p) != 0) die("pipe");
  pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[0]);
    int cfd = open(g_path, O_RDWR);
    if (cfd < 0 || setlk(cfd, F_SETLK, F_WRLCK, 1, 1) != 0) _exit(1);
    send_byte(p[1]);
    _exit(setlk(cfd, F_SETLKW, F_WRLCK, 0, 1) == 0 ? 0 : 1);  /* waits for the parent */
  }
  close(p[1]);
  wait_byte(p[0]);
  usleep(300000);  /* the child is waiting by now */
  r = setlk(fd, F_SETLKW, F_WRLCK, 1, 1);
  report("F_SETLKW closing a cycle with another process", r);
  setlk(fd, F_SETLK, F_UNLCK, 0, 0);  /* lets the child have byte 0 */
  reap(pid, "deadlock partner");
  close(p[0]);

  r = setlk(-1, F_SETLKW, F_WRLCK, 0, 0);
  report("F_SETLKW on a bad descriptor", r);
  close(fd);
  unlink(g_path);
  return 0;
}
