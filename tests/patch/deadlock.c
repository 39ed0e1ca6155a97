/* Threads that all wait.
 *   deadlock abba: two threads take two mutexes in opposite orders and main joins them: a
 *     deadlock (natively the process hangs, at 0 % CPU);
 *   deadlock sem: two threads wait in sem_wait, main joins them; after 0.5 s a SIGALRM
 *     handler posts the semaphore twice: not a deadlock, every thread ends, exit 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static sem_t sem;

static void* ab(void* p) {
  pthread_setname_np(pthread_self(), "takes-a-then-b");
  pthread_mutex_lock(&a);
  usleep(50000);
  pthread_mutex_lock(&b);
  return p;
}

static void* ba(void* p) {
  pthread_setname_np(pthread_self(), "takes-b-then-a");
  pthread_mutex_lock(&b);
  usleep(50000);
  pthread_mutex_lock(&a);
  return p;
}

static void* waiter(void* p) {
  while (sem_wait(&sem) != 0) {
  }
  return p;
}

static void on_alarm(int sig) {
  (void)sig;
  sem_post(&sem);
  sem_post(&sem);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  pthread_t x, y;
  if (argc > 1 && !strcmp(argv[1], "sem")) {
    sem_init(&sem, 0, 0);
    signal(SIGALRM, on_alarm);
    struct itimerval it = {{0, 0}, {0, 500000}};
    setitimer(ITIMER_REAL, &it, NULL);
    pthread_create(&x, NULL, waiter, NULL);
    pthread_create(&y, NULL, waiter, NULL);
    pthread_join(x, NULL);
    pthread_join(y, NULL);
    puts("both waiters ended");
    return 0;
  }
  pthread_create(&x, NULL, ab, NULL);
  pthread_create(&y, NULL, ba, NULL);
  puts("started");
  pthread_join(x, NULL);
  pthread_join(y, NULL);
  puts("never");
  return 0;
}
