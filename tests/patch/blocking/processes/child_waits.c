// One thread waits ~1 s for a child process in one way (the case named by argv[1]) while
// another thread ticks 20 x 20 ms. Natively the ticks end long before the wait returns; if
// the wait blocked the OS thread that carries both threads as fibers, the ticks could only
// end after it. The verdict is that order, never a measured time. The child's status is
// printed too (as natively).
//   child_waits system|pclose|waitpid|waitid|waitid-any|wait|wait4|wait-nothread|stopped|spawn
#define _GNU_SOURCE
#include <errno.h>
#include <semaphore.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static sem_t started;
static atomic_int ticks_done;

static void* ticker(void* arg) {
  (void)arg;
  sem_post(&started);
  for (int i = 0; i < 20; ++i) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  atomic_store(&ticks_done, 1);
  return NULL;
}

// A child that sleeps 1 s and exits with `code`.
static pid_t fork_sleeper(int code) {
  pid_t pid = fork();
  if (pid == 0) {
    sleep(1);
    _exit(code);
  }
  return pid;
}

static void print_status(const char* what, int st) {
  if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) printf("%s: killed by signal %d\n", what, WTERMSIG(st));
  else printf("%s: status %#x\n", what, st);
}

int main(int argc, char** argv) {
  alarm(60);
  if (argc != 2) {
    fprintf(stderr, "usage: child_waits system|pclose|waitpid|waitid|waitid-any|wait|wait4|wait-nothread|stopped|spawn\n");
    return 2;
  }
  const char* c = argv[1];
  sem_init(&started, 0, 0);
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  sem_wait(&started);  // the ticker runs before the wait starts

  if (strcmp(c, "system") == 0) {
    print_status("system(\"sleep 1; exit 3\")", system("sleep 1; exit 3"));
  } else if (strcmp(c, "pclose") == 0) {
    FILE* f = popen("sleep 1; exit 4", "r");
    if (!f) {
      printf("popen failed: %s\n", strerror(errno));
      return 1;
    }
    print_status("pclose(popen(\"sleep 1; exit 4\"))", pclose(f));
  } else if (strcmp(c, "waitpid") == 0) {
    pid_t pid = fork_sleeper(5);
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    printf("waitpid returned the child: %s\n", r == pid ? "yes" : "no");
    print_status("waitpid", st);
  } else if (strcmp(c, "waitid") == 0) {
    pid_t pid = fork_sleeper(6);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PID, (id_t)pid, &si, WEXITED);
    printf("waitid: %d, si_pid is the child: %s, si_code CLD_EXITED: %s, si_status %d\n", r,
           si.si_pid == pid ? "yes" : "no", si.si_code == CLD_EXITED ? "yes" : "no", si.si_status);
  } else if (strcmp(c, "wait") == 0) {
    pid_t pid = fork_sleeper(7);
    int st = 0;
    pid_t r = wait(&st);
    printf("wait returned the child: %s\n", r == pid ? "yes" : "no");
    print_status("wait", st);
  } else if (strcmp(c, "wait4") == 0) {
    pid_t pid = fork_sleeper(8);
    int st = 0;
    struct rusage ru;
    pid_t r = wait4(-1, &st, 0, &ru);
    printf("wait4(-1) returned the child: %s\n", r == pid ? "yes" : "no");
    print_status("wait4", st);
  } else if (strcmp(c, "wait-nothread") == 0) {
    // __WNOTHREAD: only this thread's children (the patch then polls, backing off).
    pid_t pid = fork_sleeper(11);
    int st = 0;
    pid_t r = wait4(-1, &st, __WNOTHREAD, NULL);
    printf("wait4(-1, __WNOTHREAD) returned the child: %s\n", r == pid ? "yes" : "no");
    print_status("wait4(-1, __WNOTHREAD)", st);
  } else if (strcmp(c, "waitid-any") == 0) {
    pid_t pid = fork_sleeper(10);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_ALL, 0, &si, WEXITED);
    printf("waitid(P_ALL): %d, si_pid is the child: %s, si_status %d\n", r, si.si_pid == pid ? "yes" : "no",
           si.si_status);
  } else if (strcmp(c, "stopped") == 0) {
    pid_t pid = fork();
    if (pid == 0) {
      sleep(1);
      raise(SIGSTOP);
      _exit(0);
    }
    int st = 0;
    pid_t r = waitpid(pid, &st, WUNTRACED);
    printf("waitpid(WUNTRACED) returned the child: %s, stopped by signal %d\n", r == pid ? "yes" : "no",
           WIFSTOPPED(st) ? WSTOPSIG(st) : 0);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
  } else if (strcmp(c, "spawn") == 0) {
    pid_t pid;
    char* args[] = {"sh", "-c", "sleep 1; exit 9", NULL};
    int e = posix_spawn(&pid, "/bin/sh", NULL, NULL, args, environ);
    if (e != 0) {
      printf("posix_spawn failed: %s\n", strerror(e));
      return 1;
    }
    int st = 0;
    pid_t r = waitpid(pid, &st, 0);
    printf("posix_spawn + waitpid returned the child: %s\n", r == pid ? "yes" : "no");
    print_status("posix_spawn + waitpid", st);
  } else {
    fprintf(stderr, "unknown case %s\n", c);
    return 2;
  }
  int held = !atomic_load(&ticks_done);
  printf("%s: the ticks ended before the wait returned: %s\n", c, held ? "NO (held up)" : "yes");
  pthread_join(t, NULL);
  return held ? 1 : 0;
}
