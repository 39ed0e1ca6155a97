/* Threads that all wait. `signal`: main waits in sem_wait until a SIGALRM handler posts
 * (the daemon shape: wait for a signal); prints how it woke. `forever`: a thread and main
 * both wait on semaphores nobody posts: natively the process sleeps until killed, using no
 * CPU; so must it under ringlet-run (no deadlock breaker whose EINTR the caller retries at
 * once, forever). Prints "waiting" first. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static sem_t s, never;

static void on_alarm(int sig) {
  (void)sig;
  sem_post(&s);
}

static void* waiter(void* arg) {
  (void)arg;
  while (sem_wait(&never) == -1 && errno == EINTR) {
  }
  return NULL;
}

int main(int argc, char** argv) {
  sem_init(&s, 0, 0);
  sem_init(&never, 0, 0);
  if (argc > 1 && strcmp(argv[1], "forever") == 0) {
    pthread_t t;
    pthread_create(&t, NULL, waiter, NULL);
    printf("waiting\n");
    fflush(stdout);
    while (sem_wait(&never) == -1 && errno == EINTR) {
    }
    printf("woke, which nothing should do\n");
    return 1;
  }
  signal(SIGALRM, on_alarm);
  alarm(1);
  int r;
  while ((r = sem_wait(&s)) == -1 && errno == EINTR) {
  }
  printf("woken by the handler: %d\n", r);
  return 0;
}
