/* Named semaphores (sem_open) and process-shared unnamed ones (sem_init(s, 1, 0) in
 * MAP_SHARED memory) posted by another process after 1 s (issue 20): a ticking thread is not
 * held up. sem_timedwait that nobody posts: ETIMEDOUT; sem_wait ended by a handler without
 * SA_RESTART: EINTR. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <semaphore.h>
#include <sys/mman.h>

#include "ticker.h"

static void post_later(sem_t* s) {
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    usleep(1000000);
    _exit(sem_post(s) == 0 ? 0 : 1);
  }
  ticker_start();
  int r = sem_wait(s);
  double t = now_s();
  printf("sem_wait: %d %s\n", r, r ? errname(errno) : "0");
  ticker_verdict(s == SEM_FAILED ? "?" : "semaphore posted by another process after 1 s", t);
  reap(pid, "poster");
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  char name[64];
  snprintf(name, sizeof name, "/ringlet-sem-%d", (int)getpid());
  sem_t* named = sem_open(name, O_CREAT | O_EXCL, 0600, 0);
  if (named == SEM_FAILED) die("sem_open");
  sem_unlink(name);
  printf("named semaphore:\n");
  post_later(named);

  sem_t* un = mmap(NULL, sizeof *un, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (un == MAP_FAILED) die("mmap");
  if (sem_init(un, 1, 0) != 0) die("sem_init");
  printf("process-shared unnamed semaphore:\n");
  post_later(un);

  int r = sem_trywait(named);
  printf("sem_trywait at 0: %d %s\n", r, r ? errname(errno) : "0");
  struct timespec abs;
  clock_gettime(CLOCK_REALTIME, &abs);
  abs.tv_nsec += 200000000;
  if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
  r = sem_timedwait(named, &abs);
  printf("sem_timedwait 200 ms, nobody posts: %d %s\n", r, r ? errname(errno) : "0");
  abs.tv_nsec = 2000000000;
  r = sem_timedwait(named, &abs);
  printf("sem_timedwait with a bad timespec: %d %s\n", r, r ? errname(errno) : "0");

  handle(SIGALRM, 0);
  g_handled = 0;
  alarm(1);
  r = sem_wait(un);
  printf("sem_wait, handler without SA_RESTART: %d %s, handler ran %d time(s)\n", r, r ? errname(errno) : "0",
         (int)g_handled);
  signal(SIGALRM, SIG_DFL);
  alarm(60);
  sem_post(named);
  int v = -1;
  sem_getvalue(named, &v);
  printf("value after a post: %d\n", v);
  abs.tv_nsec = -1;
  r = sem_timedwait(named, &abs);
  printf("sem_timedwait with a bad timespec, value 1: %d %s\n", r, r ? errname(errno) : "0");
  clock_gettime(CLOCK_MONOTONIC, &abs);
  r = sem_clockwait(named, CLOCK_PROCESS_CPUTIME_ID, &abs);
  printf("sem_clockwait on a clock it cannot wait on, value 1: %d %s\n", r, r ? errname(errno) : "0");
  r = sem_clockwait(named, CLOCK_MONOTONIC, &abs);
  printf("sem_clockwait, value 1: %d %s\n", r, r ? errname(errno) : "0");
  sem_close(named);
  sem_destroy(un);
  return 0;
}
