/* Process-shared pthread objects in MAP_SHARED memory, with another process (issue 20): a
 * mutex it holds for 1 s, a condition variable it signals after 1 s, a barrier it reaches
 * after 1 s, an rwlock it write-holds for 1 s; a robust mutex whose owner died
 * (EOWNERDEAD); an error-checking shared mutex between two threads of this process
 * (EDEADLK, EPERM, and the second thread waits for the first). A ticking thread is not held
 * up by any wait. */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "ticker.h"

struct shared {
  pthread_mutex_t mu;
  pthread_mutex_t robust;
  pthread_mutex_t errchk;
  pthread_mutex_t rec;
  pthread_cond_t cv;
  pthread_mutex_t cv_mu;
  pthread_barrier_t bar;
  pthread_rwlock_t rw;
  int flag;
};
static struct shared* g;

static pid_t child(void (*body)(int), int* pipe_rd) {
  int p[2];
  if (pipe(p) != 0) die("pipe");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(p[0]);
    body(p[1]);
    _exit(0);
  }
  close(p[1]);
  *pipe_rd = p[0];
  return pid;
}

static void hold_mutex(int wr) {
  if (pthread_mutex_lock(&g->mu) != 0) _exit(1);
  send_byte(wr);
  usleep(1000000);
  pthread_mutex_unlock(&g->mu);
}

static void die_holding(int wr) {
  if (pthread_mutex_lock(&g->robust) != 0) _exit(1);
  send_byte(wr);
  _exit(0);  /* the owner dies holding it */
}

static void signal_later(int wr) {
  send_byte(wr);
  usleep(1000000);
  pthread_mutex_lock(&g->cv_mu);
  g->flag = 1;
  pthread_cond_signal(&g->cv);
  pthread_mutex_unlock(&g->cv_mu);
}

static void barrier_later(int wr) {
  send_byte(wr);
  usleep(1000000);
  int r = pthread_barrier_wait(&g->bar);
  if (r != 0 && r != PTHREAD_BARRIER_SERIAL_THREAD) _exit(1);
}

static void hold_write(int wr) {
  if (pthread_rwlock_wrlock(&g->rw) != 0) _exit(1);
  send_byte(wr);
  usleep(1000000);
  pthread_rwlock_unlock(&g->rw);
}

static void* rec_other(void* arg) {
  (void)arg;
  int r = pthread_mutex_trylock(&g->rec);
  printf("recursive: trylock by another thread while held: %s\n", errname(r));
  if (r == 0) pthread_mutex_unlock(&g->rec);
  r = pthread_mutex_unlock(&g->rec);
  printf("recursive: unlock by another thread: %s\n", errname(r));
  return NULL;
}

static double g_t2;
static int g_r2;
static void* second_locker(void* arg) {
  (void)arg;
  g_r2 = pthread_mutex_unlock(&g->errchk);  /* not its owner */
  printf("error-checking: unlock by another thread: %s\n", errname(g_r2));
  g_r2 = pthread_mutex_lock(&g->errchk);
  g_t2 = now_s();
  pthread_mutex_unlock(&g->errchk);
  return NULL;
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IONBF, 0);
  g = mmap(NULL, sizeof *g, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (g == MAP_FAILED) die("mmap");
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&g->mu, &ma);
  pthread_mutex_init(&g->cv_mu, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&g->errchk, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&g->rec, &ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_NORMAL);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&g->robust, &ma);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
  pthread_cond_init(&g->cv, &ca);
  pthread_barrierattr_t ba;
  pthread_barrierattr_init(&ba);
  pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(&g->bar, &ba, 2);
  pthread_rwlockattr_t ra;
  pthread_rwlockattr_init(&ra);
  pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
  pthread_rwlock_init(&g->rw, &ra);

  int rd;
  pid_t pid = child(hold_mutex, &rd);
  wait_byte(rd);
  int r = pthread_mutex_trylock(&g->mu);
  printf("mutex: trylock while another process holds it: %s\n", errname(r));
  ticker_start();
  r = pthread_mutex_lock(&g->mu);
  double t = now_s();
  printf("mutex: lock: %s\n", errname(r));
  ticker_verdict("shared mutex held by another process for 1 s", t);
  pthread_mutex_unlock(&g->mu);
  reap(pid, "mutex holder");
  close(rd);

  pid = child(hold_mutex, &rd);
  wait_byte(rd);
  struct timespec abs;
  clock_gettime(CLOCK_REALTIME, &abs);
  abs.tv_nsec += 200000000;
  if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
  r = pthread_mutex_timedlock(&g->mu, &abs);
  printf("mutex: timedlock for 200 ms while held 1 s: %s\n", errname(r));
  reap(pid, "mutex holder");
  close(rd);

  pid = child(die_holding, &rd);
  wait_byte(rd);
  reap(pid, "robust owner");
  close(rd);
  struct timespec bad = {0, 2000000000L};
  r = pthread_mutex_clocklock(&g->mu, CLOCK_PROCESS_CPUTIME_ID, &abs);
  printf("mutex: clocklock on a clock it cannot wait on, mutex free: %s\n", errname(r));
  r = pthread_rwlock_timedrdlock(&g->rw, &bad);
  printf("rwlock: timedrdlock with a bad timespec, lock free: %s\n", errname(r));
  if (r == 0) pthread_rwlock_unlock(&g->rw);
  r = pthread_mutex_lock(&g->robust);
  printf("robust mutex whose owner died: %s\n", errname(r));
  if (r == EOWNERDEAD) pthread_mutex_consistent(&g->robust);
  pthread_mutex_unlock(&g->robust);

  r = pthread_mutex_lock(&g->errchk);
  printf("error-checking: lock: %s\n", errname(r));
  r = pthread_mutex_lock(&g->errchk);
  printf("error-checking: lock again by its owner: %s\n", errname(r));
  r = pthread_mutex_trylock(&g->errchk);
  printf("error-checking: trylock by its owner: %s\n", errname(r));
  pthread_t th;
  pthread_create(&th, NULL, second_locker, NULL);
  usleep(300000);
  double t1 = now_s();
  pthread_mutex_unlock(&g->errchk);
  pthread_join(th, NULL);
  printf("error-checking: the second thread got it after the first let go: %s (%s)\n",
         g_t2 >= t1 ? "yes" : "no", errname(g_r2));

  r = pthread_mutex_lock(&g->rec);
  int r2 = pthread_mutex_lock(&g->rec);
  printf("recursive: locked twice by its owner: %s %s\n", errname(r), errname(r2));
  pthread_create(&th, NULL, rec_other, NULL);
  pthread_join(th, NULL);
  r = pthread_mutex_unlock(&g->rec);
  r2 = pthread_mutex_unlock(&g->rec);
  printf("recursive: unlocked twice by its owner: %s %s\n", errname(r), errname(r2));
  r = pthread_mutex_unlock(&g->rec);
  printf("recursive: a third unlock: %s\n", errname(r));

  pid = child(signal_later, &rd);
  wait_byte(rd);
  ticker_start();
  pthread_mutex_lock(&g->cv_mu);
  int rc = 0;
  while (!g->flag && rc == 0) rc = pthread_cond_wait(&g->cv, &g->cv_mu);
  t = now_s();
  pthread_mutex_unlock(&g->cv_mu);
  printf("cond: wait: %s, flag %d\n", errname(rc), g->flag);
  ticker_verdict("shared condition variable signalled by another process", t);
  reap(pid, "signaller");
  close(rd);

  pthread_mutex_lock(&g->cv_mu);
  clock_gettime(CLOCK_REALTIME, &abs);
  abs.tv_nsec += 200000000;
  if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
  rc = pthread_cond_timedwait(&g->cv, &g->cv_mu, &abs);
  printf("cond: timedwait 200 ms, nobody signals: %s, mutex held after: %s\n", errname(rc),
         pthread_mutex_trylock(&g->cv_mu) == EBUSY ? "yes" : "no");
  pthread_mutex_unlock(&g->cv_mu);

  pid = child(barrier_later, &rd);
  wait_byte(rd);
  ticker_start();
  r = pthread_barrier_wait(&g->bar);
  t = now_s();
  printf("barrier: %s\n", r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD ? "passed" : errname(r));
  ticker_verdict("shared barrier reached by another process 1 s later", t);
  reap(pid, "barrier partner");
  close(rd);

  pid = child(hold_write, &rd);
  wait_byte(rd);
  r = pthread_rwlock_tryrdlock(&g->rw);
  printf("rwlock: tryrdlock while written elsewhere: %s\n", errname(r));
  ticker_start();
  r = pthread_rwlock_rdlock(&g->rw);
  t = now_s();
  printf("rwlock: rdlock: %s\n", errname(r));
  ticker_verdict("shared rwlock write-held by another process for 1 s", t);
  pthread_rwlock_unlock(&g->rw);
  reap(pid, "writer");
  close(rd);

  r = pthread_rwlock_wrlock(&g->rw);
  printf("rwlock: wrlock: %s\n", errname(r));
  r = pthread_rwlock_rdlock(&g->rw);
  printf("rwlock: rdlock by the writer: %s\n", errname(r));
  r = pthread_rwlock_trywrlock(&g->rw);
  printf("rwlock: trywrlock by the writer: %s\n", errname(r));
  pthread_rwlock_unlock(&g->rw);
  r = pthread_rwlock_rdlock(&g->rw);
  printf("rwlock: rdlock after the unlock: %s\n", errname(r));
  pthread_rwlock_unlock(&g->rw);
  return 0;
}
