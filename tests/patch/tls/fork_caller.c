/* fork from a thread keeps only the caller in the child (issue 19's fork rule, and
 * test_threading's test_3_join_in_forked_from_thread): the other threads (one ticking, one
 * waiting for a mutex, one sleeping, one reading a socket) never run there, not even when
 * the child unlocks the mutex, outlives the sleep or writes to the socket (whose byte the
 * parent's reader then takes: the socket is shared); the child's one
 * thread has the child's pid as its id and can start threads; pthread_atfork handlers run
 * in POSIX's order; the child ends with status 0 when that thread, the last, returns (main
 * is not in the child). Prints the same lines natively and under ringlet-run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int ticks;      /* the ticker's count */
static atomic_int stop;
static int pipefd[2];         /* the child reports to the parent through it */
static atomic_int ran_after;  /* set by a waiting thread when its wait ends */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int sock[2];
static char order[64];        /* pthread_atfork handlers, in the order they ran */

static void add(const char* what) { strncat(order, what, sizeof order - strlen(order) - 1); }
static void prep1(void) { add("P1 "); }
static void prep2(void) { add("P2 "); }
static void parent1(void) { add("p1 "); }
static void parent2(void) { add("p2 "); }
static void child1(void) { add("c1 "); }
static void child2(void) { add("c2 "); }

static void* mutex_waiter(void* arg) {
  (void)arg;
  pthread_mutex_lock(&mu); /* main holds it until the parent's report is in */
  atomic_store(&ran_after, 1);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  usleep(15000); /* ends while the child still lives */
  atomic_store(&ran_after, 2);
  return NULL;
}

static void* reader(void* arg) {
  (void)arg;
  char c;
  if (read(sock[0], &c, 1) == 1) atomic_store(&ran_after, 3);
  return NULL;
}

static void* ticker(void* arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    atomic_fetch_add(&ticks, 1);
    usleep(1000);
  }
  return NULL;
}

static void* late(void* arg) {
  (void)arg;
  usleep(20000);
  return NULL;
}

static void* forker(void* arg) {
  (void)arg;
  usleep(5000); /* the ticker is running by now */
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    char line[512];
    int before = atomic_load(&ticks);
    pthread_mutex_unlock(&mu); /* main's: the child's one thread may (it is undefined natively
                                  only for error-checking mutexes) */
    if (write(sock[1], "x", 1) != 1) _exit(4);
    usleep(30000); /* a ticker alive here would tick about 30 times */
    int after = atomic_load(&ticks);
    const int waited = atomic_load(&ran_after);
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_t t;
    int rc = pthread_create(&t, NULL, late, NULL); /* a new thread in the child works */
    if (rc == 0) pthread_join(t, NULL);
    snprintf(line, sizeof line,
             "child: other threads ran: %s; a waiting thread ran: %s; "
             "gettid is the pid: %s; new thread: %s; atfork: %s\n",
             after != before ? "yes" : "no", waited ? "yes" : "no",
             tid == getpid() ? "yes" : "no", rc == 0 ? "ok" : strerror(rc), order);
    if (write(pipefd[1], line, strlen(line)) < 0) _exit(3);
    return NULL; /* the last thread of the child returns: the child exits with 0 */
  }
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[256] = {0};
  ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
  if (n > 0) fputs(buf, stdout);
  printf("parent: atfork: %s\n", order);
  printf("parent: child exited %s %d\n", WIFEXITED(status) ? "with" : "by signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return NULL;
}

int main(void) {
  alarm(60);
  if (pipe(pipefd) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sock) != 0) return 1;
  pthread_atfork(prep1, parent1, child1);
  pthread_atfork(prep2, parent2, child2);
  pthread_mutex_lock(&mu);
  pthread_t a, b, w[3];
  pthread_create(&a, NULL, ticker, NULL);
  pthread_create(&w[0], NULL, mutex_waiter, NULL);
  pthread_create(&w[1], NULL, sleeper, NULL);
  pthread_create(&w[2], NULL, reader, NULL);
  pthread_create(&b, NULL, forker, NULL);
  pthread_join(b, NULL);
  atomic_store(&stop, 1);
  pthread_join(a, NULL);
  pthread_mutex_unlock(&mu);
  for (int i = 0; i < 3; ++i) pthread_join(w[i], NULL);
  printf("parent: done\n");
  return 0;
}
