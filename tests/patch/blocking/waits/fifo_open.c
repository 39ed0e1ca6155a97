/* open of a FIFO without O_NONBLOCK waits for the other end (issue 20): a reader whose
 * writer comes 1 s later, a writer whose reader comes 1 s later, and a signal whose handler
 * lacks SA_RESTART ending the wait with EINTR (with SA_RESTART the open goes on). Another
 * thread ticks meanwhile and must not be held up. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

#include "ticker.h"

static char g_dir[] = "/tmp/ringlet-fifo-XXXXXX";
static char g_path[256];

static void reader_waits(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    sleep(1);
    int fd = open(g_path, O_WRONLY);
    if (fd < 0) _exit(1);
    if (write(fd, "hello\n", 6) != 6) _exit(1);
    close(fd);
    _exit(0);
  }
  ticker_start();
  int fd = open(g_path, O_RDONLY);
  double t = now_s();
  if (fd < 0) die("open (reader)");
  ticker_verdict("reader waits for its writer", t);
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  printf("reader read %zd bytes: %s", n, buf);
  printf("reader's descriptor is blocking: %s\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) ? "no" : "yes");
  close(fd);
  reap(pid, "reader waits for its writer");
}

static void writer_waits(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    sleep(1);
    int fd = open(g_path, O_RDONLY);
    if (fd < 0) _exit(1);
    char buf[8] = {0};
    if (read(fd, buf, 4) != 4 || memcmp(buf, "ping", 4) != 0) _exit(1);
    _exit(0);
  }
  ticker_start();
  int fd = creat(g_path, 0600);  /* open(O_CREAT|O_WRONLY|O_TRUNC): waits for a reader too */
  double t = now_s();
  if (fd < 0) die("creat (writer)");
  ticker_verdict("writer waits for its reader", t);
  printf("writer wrote %zd bytes\n", write(fd, "ping", 4));
  close(fd);
  reap(pid, "writer waits for its reader");
}

/* No writer ever comes: a SIGALRM handler without SA_RESTART ends the open with EINTR. */
static void interrupted(void) {
  handle(SIGALRM, 0);
  g_handled = 0;
  alarm(1);
  int fd = openat(AT_FDCWD, g_path, O_RDONLY);
  int e = errno;
  printf("open interrupted by a handler without SA_RESTART: %d %s, handler ran %d time(s)\n", fd,
         fd < 0 ? errname(e) : "0", (int)g_handled);
  if (fd >= 0) close(fd);
}

/* With SA_RESTART the open goes on after the handler and returns when the writer comes. */
static void restarted(void) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    usleep(1500000);
    int fd = open(g_path, O_WRONLY);
    if (fd < 0) _exit(1);
    close(fd);
    _exit(0);
  }
  handle(SIGALRM, 1);
  g_handled = 0;
  alarm(1);
  int fd = open(g_path, O_RDONLY);
  int e = errno;
  printf("open with an SA_RESTART handler: %s, handler ran %d time(s)\n", fd >= 0 ? "opened" : errname(e),
         (int)g_handled);
  if (fd >= 0) close(fd);
  reap(pid, "restarted");
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!mkdtemp(g_dir)) die("mkdtemp");
  snprintf(g_path, sizeof g_path, "%s/fifo", g_dir);
  if (mkfifo(g_path, 0600) != 0) die("mkfifo");
  reader_waits();
  writer_waits();
  interrupted();
  restarted();
  signal(SIGALRM, SIG_DFL);
  alarm(60);
  /* O_RDWR never waits (Linux), O_NONBLOCK reader neither, O_NONBLOCK writer: ENXIO. */
  int fd = open(g_path, O_RDWR);
  printf("O_RDWR: %s\n", fd >= 0 ? "opened at once" : errname(errno));
  if (fd >= 0) close(fd);
  fd = open(g_path, O_WRONLY | O_NONBLOCK);
  printf("O_WRONLY|O_NONBLOCK without a reader: %s\n", fd >= 0 ? "opened" : errname(errno));
  if (fd >= 0) close(fd);
  unlink(g_path);
  rmdir(g_dir);
  return 0;
}
