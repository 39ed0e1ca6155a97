/* fork from main while threads run on other carriers (issue 21): the child keeps main only,
 * as natively. The other threads (one ticking, one waiting for a mutex, one sleeping) never
 * run in the child, not even when it unlocks the mutex or outlives the sleep; the child's
 * main can start and join a thread; pthread_atfork handlers run in POSIX's order; the child
 * ends with the status its main returns (3), then the parent goes on with all its threads.
 * Under ringlet-run --threads 2 the threads after the first are spread over both carriers
 * and main forks on carrier 0. Prints the same lines natively and under ringlet-run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int ticks;
static atomic_int stop;
static atomic_int ran_after; /* set by a waiting thread when its wait ends */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char order[64];

static void add(const char* what) { strncat(order, what, sizeof order - strlen(order) - 1); }
static void prep(void) { add("P "); }
static void parent(void) { add("p "); }
static void child(void) { add("c "); }

static void* ticker(void* arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    atomic_fetch_add(&ticks, 1);
    usleep(1000);
  }
  return NULL;
}

static void* mutex_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  atomic_store(&ran_after, 1);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  usleep(15000);
  atomic_store(&ran_after, 2);
  return NULL;
}

static void* late(void* arg) {
  (void)arg;
  usleep(5000);
  return (void*)42;
}

int main(void) {
  alarm(60);
  int pipefd[2];
  if (pipe(pipefd) != 0) return 1;
  pthread_atfork(prep, parent, child);
  pthread_mutex_lock(&mu);
  pthread_t t[4];
  pthread_create(&t[0], NULL, ticker, NULL);
  pthread_create(&t[1], NULL, ticker, NULL);
  pthread_create(&t[2], NULL, mutex_waiter, NULL);
  pthread_create(&t[3], NULL, sleeper, NULL);
  usleep(5000); /* the tickers run by now, the others wait */
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    char line[512];
    int before = atomic_load(&ticks);
    pthread_mutex_unlock(&mu);
    usleep(30000); /* a ticker alive here would tick about 30 times */
    int after = atomic_load(&ticks);
    const int waited = atomic_load(&ran_after);
    pthread_t n;
    void* got = NULL;
    int rc = pthread_create(&n, NULL, late, NULL);
    if (rc == 0) pthread_join(n, &got);
    snprintf(line, sizeof line,
             "child: other threads ran: %s; a waiting thread ran: %s; "
             "gettid is the pid: %s; new thread: %s; atfork: %s\n",
             after != before ? "yes" : "no", waited ? "yes" : "no",
             (pid_t)syscall(SYS_gettid) == getpid() ? "yes" : "no",
             rc == 0 ? (got == (void*)42 ? "ok" : "wrong result") : strerror(rc), order);
    if (write(pipefd[1], line, strlen(line)) < 0) _exit(4);
    return 3; /* main returns: the child exits with 3 */
  }
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[512] = {0};
  ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
  if (n > 0) fputs(buf, stdout);
  printf("parent: atfork: %s\n", order);
  printf("parent: child exited %s %d\n", WIFEXITED(status) ? "with" : "by signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  int t0 = atomic_load(&ticks);
  usleep(10000);
  printf("parent: threads still tick: %s\n", atomic_load(&ticks) != t0 ? "yes" : "no");
  atomic_store(&stop, 1);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
  printf("parent: done, a waiting thread ran: %s\n", atomic_load(&ran_after) ? "yes" : "no");
  return 0;
}
