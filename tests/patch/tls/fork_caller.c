/* fork from a thread keeps only the caller in the child (issue 19's fork rule, and
 * test_threading's test_3_join_in_forked_from_thread): the other threads never run there,
 * the child's one thread has the child's pid as its id, and the child ends with status 0
 * when that thread, the last, returns (main is not in the child).
 * Prints the same lines natively and under ringlet-run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int ticks;      /* the ticker's count */
static atomic_int stop;
static int pipefd[2];         /* the child reports to the parent through it */

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
    char line[256];
    int before = atomic_load(&ticks);
    usleep(30000); /* a ticker alive here would tick about 30 times */
    int after = atomic_load(&ticks);
    pid_t tid = (pid_t)syscall(SYS_gettid);
    pthread_t t;
    int rc = pthread_create(&t, NULL, late, NULL); /* a new thread in the child works */
    if (rc == 0) pthread_join(t, NULL);
    snprintf(line, sizeof line, "child: other threads ran: %s; gettid is the pid: %s; new thread: %s\n",
             after != before ? "yes" : "no", tid == getpid() ? "yes" : "no", rc == 0 ? "ok" : strerror(rc));
    if (write(pipefd[1], line, strlen(line)) < 0) _exit(3);
    return NULL; /* the last thread of the child returns: the child exits with 0 */
  }
  int status = 0;
  waitpid(pid, &status, 0);
  char buf[256] = {0};
  ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
  if (n > 0) fputs(buf, stdout);
  printf("parent: child exited %s %d\n", WIFEXITED(status) ? "with" : "by signal",
         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  return NULL;
}

int main(void) {
  alarm(60);
  if (pipe(pipefd) != 0) return 1;
  pthread_t a, b;
  pthread_create(&a, NULL, ticker, NULL);
  pthread_create(&b, NULL, forker, NULL);
  pthread_join(b, NULL);
  atomic_store(&stop, 1);
  pthread_join(a, NULL);
  printf("parent: done\n");
  return 0;
}
