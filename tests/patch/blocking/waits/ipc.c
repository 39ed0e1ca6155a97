/* Message queues and System V semaphores another process serves 1 s later (issue 20's
 * "other waits"): semop, msgrcv, mq_receive, while a thread ticks. semop ended by a handler
 * WITH SA_RESTART still answers EINTR (System V IPC is never restarted); mq_receive ended
 * by one without SA_RESTART: EINTR; timed forms time out as natively. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>

#include "ticker.h"

struct msg {
  long type;
  char text[16];
};

static pid_t later(void (*body)(void)) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    usleep(1000000);
    body();
    _exit(0);
  }
  return pid;
}

static int g_sem, g_msq;
static mqd_t g_mq;

static void post_sem(void) {
  struct sembuf op = {0, 1, 0};
  if (semop(g_sem, &op, 1) != 0) _exit(1);
}

static void send_msg(void) {
  struct msg m = {7, "hello"};
  if (msgsnd(g_msq, &m, sizeof m.text, 0) != 0) _exit(1);
}

static void send_mq(void) {
  if (mq_send(g_mq, "ping", 4, 3) != 0) _exit(1);
}

static struct timespec after_ms(clockid_t clock, int ms) {
  struct timespec t;
  clock_gettime(clock, &t);
  t.tv_nsec += ms * 1000000L;
  while (t.tv_nsec >= 1000000000L) t.tv_sec++, t.tv_nsec -= 1000000000L;
  return t;
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  g_sem = semget(IPC_PRIVATE, 1, 0600);
  g_msq = msgget(IPC_PRIVATE, 0600);
  char name[64];
  snprintf(name, sizeof name, "/ringlet-mq-%d", (int)getpid());
  struct mq_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.mq_maxmsg = 4;
  attr.mq_msgsize = 16;
  g_mq = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
  if (g_sem < 0 || g_msq < 0 || g_mq == (mqd_t)-1) die("semget/msgget/mq_open");
  mq_unlink(name);

  pid_t pid = later(post_sem);
  ticker_start();
  struct sembuf down = {0, -1, SEM_UNDO};
  int r = semop(g_sem, &down, 1);
  double t = now_s();
  printf("semop: %d %s, value now %d\n", r, r ? errname(errno) : "0", semctl(g_sem, 0, GETVAL));
  ticker_verdict("System V semaphore raised by another process after 1 s", t);
  reap(pid, "sem poster");

  struct timespec rel = {0, 200000000};
  r = semtimedop(g_sem, &down, 1, &rel);
  printf("semtimedop 200 ms, nobody raises it: %d %s\n", r, r ? errname(errno) : "0");
  struct sembuf nowait = {0, -1, IPC_NOWAIT};
  r = semop(g_sem, &nowait, 1);
  printf("semop IPC_NOWAIT at 0: %d %s\n", r, r ? errname(errno) : "0");
  handle(SIGALRM, 1);
  g_handled = 0;
  alarm(1);
  r = semop(g_sem, &down, 1);
  printf("semop, handler with SA_RESTART: %d %s, handler ran %d time(s)\n", r, r ? errname(errno) : "0",
         (int)g_handled);

  pid = later(send_msg);
  ticker_start();
  struct msg m = {0, ""};
  ssize_t n = msgrcv(g_msq, &m, sizeof m.text, 0, 0);
  t = now_s();
  printf("msgrcv: %zd bytes, type %ld, '%s'\n", n, m.type, m.text);
  ticker_verdict("System V message sent by another process after 1 s", t);
  reap(pid, "msg sender");
  n = msgrcv(g_msq, &m, sizeof m.text, 0, IPC_NOWAIT);
  printf("msgrcv IPC_NOWAIT, empty: %zd %s\n", n, n < 0 ? errname(errno) : "0");

  pid = later(send_mq);
  ticker_start();
  char buf[16] = {0};
  unsigned prio = 0;
  n = mq_receive(g_mq, buf, sizeof buf, &prio);
  t = now_s();
  printf("mq_receive: %zd bytes, priority %u, '%s'\n", n, prio, buf);
  ticker_verdict("POSIX message sent by another process after 1 s", t);
  reap(pid, "mq sender");
  struct timespec abs = after_ms(CLOCK_REALTIME, 200);
  n = mq_timedreceive(g_mq, buf, sizeof buf, &prio, &abs);
  printf("mq_timedreceive 200 ms, empty: %zd %s\n", n, n < 0 ? errname(errno) : "0");
  n = mq_receive(g_mq, buf, 4, &prio);
  printf("mq_receive with a short buffer: %zd %s\n", n, n < 0 ? errname(errno) : "0");
  handle(SIGALRM, 0);
  g_handled = 0;
  alarm(1);
  n = mq_receive(g_mq, buf, sizeof buf, &prio);
  printf("mq_receive, handler without SA_RESTART: %zd %s, handler ran %d time(s)\n", n,
         n < 0 ? errname(errno) : "0", (int)g_handled);
  signal(SIGALRM, SIG_DFL);
  alarm(60);

  semctl(g_sem, 0, IPC_RMID);
  msgctl(g_msq, IPC_RMID, NULL);
  mq_close(g_mq);
  return 0;
}
