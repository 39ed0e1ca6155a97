// What the waits for children answer, as natively: statuses (exited, killed, stopped,
// continued), ECHILD, EINTR from a handler without SA_RESTART and a restart with it,
// system(NULL), 127 for a command the shell cannot run, SIGINT ignored while system()
// waits, popen's modes and errors, and that no wait reaps a child it was not asked about.
// Deterministic verdict lines only (no pids, no times).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void print_status(const char* what, int st) {
  if (st == -1) printf("%s: -1 (%s)\n", what, strerror(errno));
  else if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) printf("%s: killed by signal %d\n", what, WTERMSIG(st));
  else if (WIFSTOPPED(st)) printf("%s: stopped by signal %d\n", what, WSTOPSIG(st));
  else if (WIFCONTINUED(st)) printf("%s: continued\n", what);
  else printf("%s: status %#x\n", what, st);
}

static const char* err_name(int e) {
  switch (e) {
    case 0: return "none";
    case ECHILD: return "ECHILD";
    case EINTR: return "EINTR";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
  }
}

// A child that sleeps ms and exits with code.
static pid_t child(int ms, int code) {
  pid_t pid = fork();
  if (pid == 0) {
    msleep(ms);
    _exit(code);
  }
  return pid;
}

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
  (void)sig;
  ++usr1_seen;
}

// waitpid for a child that sends us SIGUSR1 after 400 ms and exits after 900 ms; the
// handler has SA_RESTART or not.
static void interrupted_wait(int restart, int any) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGUSR1, &sa, NULL);
  usr1_seen = 0;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    msleep(400);
    kill(parent, SIGUSR1);
    msleep(500);
    _exit(11);
  }
  int st = 0;
  errno = 0;
  pid_t r = any ? wait(&st) : waitpid(pid, &st, 0);
  int e = r < 0 ? errno : 0;
  printf("%s with a SIGUSR1 handler %s SA_RESTART: %s, errno %s, handler ran %d time(s)\n",
         any ? "wait" : "waitpid", restart ? "with" : "without", r == pid ? "the child" : r < 0 ? "-1" : "something else",
         err_name(e), (int)usr1_seen);
  if (r == pid) print_status("  its status", st);
  if (r < 0) {  // the child is still ours: wait for it again
    r = waitpid(pid, &st, 0);
    printf("  waited again: %s\n", r == pid ? "the child" : "something else");
    print_status("  its status", st);
  }
  signal(SIGUSR1, SIG_DFL);
}

struct reaper {
  pid_t pid;
  pid_t got;
  int st;
};

static void* wait_specific(void* arg) {
  struct reaper* r = arg;
  r->got = waitpid(r->pid, &r->st, 0);
  return NULL;
}

// Wait (poll: parked under the patch) until f's pipe has something to read.
static int wait_readable(FILE* f) {
  struct pollfd p = {fileno(f), POLLIN, 0};
  return poll(&p, 1, 10000) == 1;
}

// popen and pclose from several threads at once: each gets its own child's output and
// status.
static void* popen_worker(void* arg) {
  long id = (long)arg;
  long bad = 0;
  for (int i = 0; i < 5; ++i) {
    char cmd[64], line[64] = "";
    int code = (int)(id * 10 + i);
    snprintf(cmd, sizeof cmd, "echo %d; exit %d", code, code);
    FILE* f = popen(cmd, "r");
    if (!f) {
      ++bad;
      continue;
    }
    if (!wait_readable(f) || !fgets(line, sizeof line, f) || atoi(line) != code) ++bad;
    int st = pclose(f);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != code) ++bad;
  }
  return (void*)bad;
}

static volatile sig_atomic_t int_seen;
static void on_int(int sig) {
  (void)sig;
  int_seen = 1;
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  int st;

  // Statuses.
  pid_t pid = child(200, 42);
  waitpid(pid, &st, 0);
  print_status("child exiting with 42", st);
  pid = fork();
  if (pid == 0) {
    msleep(200);
    raise(SIGTERM);
    _exit(0);
  }
  waitpid(pid, &st, 0);
  print_status("child raising SIGTERM", st);
  printf("  WIFSIGNALED %d, WTERMSIG %d, WIFEXITED %d\n", WIFSIGNALED(st), WTERMSIG(st), WIFEXITED(st));

  // Stopped and continued (WUNTRACED, WCONTINUED), then killed.
  pid = fork();
  if (pid == 0) {
    msleep(200);
    raise(SIGSTOP);
    msleep(5000);
    _exit(0);
  }
  waitpid(pid, &st, WUNTRACED);
  print_status("waitpid(WUNTRACED) of a child that stops itself", st);
  kill(pid, SIGCONT);
  waitpid(pid, &st, WCONTINUED);
  print_status("waitpid(WCONTINUED) after SIGCONT", st);
  kill(pid, SIGKILL);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid(P_PID, (id_t)pid, &si, WEXITED);
  printf("waitid after SIGKILL: %d, si_code CLD_KILLED %s, si_status %d\n", r,
         si.si_code == CLD_KILLED ? "yes" : "no", si.si_status);

  // ECHILD.
  errno = 0;
  r = waitpid(1, &st, 0);
  printf("waitpid(1) (not our child): %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  errno = 0;
  r = wait(&st);
  printf("wait() with no children: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  memset(&si, 0, sizeof si);
  r = waitid(P_ALL, 0, &si, WEXITED);
  printf("waitid(P_ALL) with no children: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  r = waitid(P_ALL, 0, &si, 0);
  printf("waitid without WEXITED/WSTOPPED/WCONTINUED: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  pid = child(100, 0);
  r = waitpid(pid, &st, 0x100 /* not an option of wait4 */);
  printf("waitpid with an unknown option: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  waitpid(pid, &st, 0);

  // EINTR and SA_RESTART.
  interrupted_wait(0, 0);
  interrupted_wait(1, 0);
  interrupted_wait(0, 1);
  interrupted_wait(1, 1);

  // A SIGCHLD handler without SA_RESTART: the exit waited for is reported, not EINTR (the
  // kernel looks for the child before it looks at signals).
  {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGCHLD, &sa, NULL);
    usr1_seen = 0;
    pid = child(200, 12);
    errno = 0;
    r = waitpid(pid, &st, 0);
    printf("waitpid with a SIGCHLD handler without SA_RESTART: %s, errno %s, handler ran %d time(s)\n",
           r == pid ? "the child" : r < 0 ? "-1" : "something else", err_name(r < 0 ? errno : 0),
           (int)usr1_seen);
    if (r < 0) waitpid(pid, &st, 0);
    usr1_seen = 0;
    pid = child(200, 12);
    errno = 0;
    r = wait(&st);
    printf("wait with a SIGCHLD handler without SA_RESTART: %s, errno %s, handler ran %d time(s)\n",
           r == pid ? "the child" : r < 0 ? "-1" : "something else", err_name(r < 0 ? errno : 0),
           (int)usr1_seen);
    if (r < 0) waitpid(pid, &st, 0);
    signal(SIGCHLD, SIG_DFL);
  }

  // waitid(P_PIDFD) on a pidfd of our own.
  pid = child(200, 13);
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  memset(&si, 0, sizeof si);
  errno = 0;
  r = pfd >= 0 ? waitid((idtype_t)3 /* P_PIDFD */, (id_t)pfd, &si, WEXITED) : -1;
  printf("waitid(P_PIDFD): %d, errno %s, si_status %d\n", r, err_name(r < 0 ? errno : 0), r == 0 ? si.si_status : -1);
  if (r != 0) waitpid(pid, &st, 0);
  if (pfd >= 0) close(pfd);

  // Nothing is reaped that was not asked about: a child that exits at once stays a zombie
  // while we wait for another one, and is still there to collect afterwards.
  pid_t quick = child(0, 21);
  pid_t slow = child(300, 22);
  waitpid(slow, &st, 0);
  print_status("the slow child", st);
  r = waitpid(quick, &st, WNOHANG);
  printf("the quick child, not asked about meanwhile, is still ours to reap: %s\n", r == quick ? "yes" : "no");
  if (r == quick) print_status("  its status", st);

  // A child reaped by one thread is not reaped again by another's waitpid(-1).
  struct reaper a = {child(300, 31), 0, 0};
  pid_t c2 = child(1500, 32);
  pthread_t ta;
  pthread_create(&ta, NULL, wait_specific, &a);
  msleep(1000);  // c1 has exited (at 300 ms) and thread A has reaped it
  r = waitpid(-1, &st, 0);
  printf("waitpid(-1) in main while thread A reaped the first child: got the second: %s\n", r == c2 ? "yes" : "no");
  print_status("  its status", st);
  pthread_join(ta, NULL);
  printf("thread A's waitpid got the first child: %s\n", a.got == a.pid ? "yes" : "no");
  print_status("  its status", a.st);
  errno = 0;
  r = waitpid(-1, &st, 0);
  printf("waitpid(-1) once both are reaped: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));

  // system.
  printf("system(NULL): %d\n", system(NULL));
  print_status("system(\"exit 7\")", system("exit 7"));
  print_status("system of a command that cannot run", system("/nonexistent/command 2>/dev/null"));
  print_status("system(\"kill -TERM $$\")", system("kill -TERM $$"));
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_int;
  sigaction(SIGINT, &sa, NULL);
  int_seen = 0;
  print_status("system sending SIGINT to its caller", system("kill -INT $PPID; sleep 0.2; exit 4"));
  printf("  the caller's SIGINT handler ran meanwhile: %s\n", int_seen ? "yes (wrong)" : "no");
  struct sigaction now;
  sigaction(SIGINT, NULL, &now);
  printf("  the SIGINT handler is back afterwards: %s\n", now.sa_handler == on_int ? "yes" : "no");
  signal(SIGINT, SIG_DFL);

  // popen and pclose.
  FILE* f = popen("echo hello; exit 3", "r");
  char line[64] = "";
  // (The stream's own reads are stdio's business: poll first, so fgets does not block.)
  if (f && wait_readable(f) && fgets(line, sizeof line, f)) printf("popen r read: %s", line);
  print_status("pclose of \"echo hello; exit 3\"", f ? pclose(f) : -1);
  f = popen("read x; exit $x", "w");
  if (f) {
    fputs("5\n", f);
    print_status("pclose of a w stream fed \"5\" to \"read x; exit $x\"", pclose(f));
  }
  // glibc's fclose of a popen stream is its pclose: the child is reaped, its status returned.
  f = popen("exit 4", "r");
  if (f) {
    print_status("fclose of a popen stream of \"exit 4\"", fclose(f));
    errno = 0;
    const pid_t left = waitpid(-1, &st, WNOHANG);
    printf("  a child left to reap after it: %s, errno %s\n", left > 0 ? "yes" : "no",
           err_name(left < 0 ? errno : 0));
  }
  f = popen("kill -KILL $$", "re");
  print_status("pclose of a child killed by SIGKILL", f ? pclose(f) : -1);
  errno = 0;
  f = popen("true", "rw");
  printf("popen mode rw: %s, errno %s\n", f ? "a stream" : "NULL", err_name(f ? 0 : errno));
  errno = 0;
  f = popen("true", "x");
  printf("popen mode x: %s, errno %s\n", f ? "a stream" : "NULL", err_name(f ? 0 : errno));
  // An earlier popen stream is closed in a later popen's child: cat sees EOF when we pclose
  // its stream although the later child ("sleep 2") is still running.
  FILE* w = popen("cat >/dev/null", "w");
  FILE* later = popen("sleep 2", "r");
  if (w && later) {
    fputs("data\n", w);
    int rc = pclose(w);
    struct pollfd p = {fileno(later), POLLIN, 0};
    int n = poll(&p, 1, 0);
    printf("an earlier popen's stream is not held by a later child: %s (pclose %d)\n",
           n == 0 ? "yes" : "no", rc);
    pclose(later);
  }
  pthread_t tw[4];
  for (long i = 0; i < 4; ++i) pthread_create(&tw[i], NULL, popen_worker, (void*)(i + 1));
  long wrong = 0;
  for (int i = 0; i < 4; ++i) {
    void* v;
    pthread_join(tw[i], &v);
    wrong += (long)v;
  }
  printf("4 threads x 5 popen/pclose at once: %ld wrong output(s) or status(es)\n", wrong);
  f = fopen("/dev/null", "r");
  errno = 0;
  int (*volatile pclose_fn)(FILE*) = pclose;  // on purpose: not a popen stream
  r = pclose_fn(f);
  printf("pclose of a FILE not from popen: %d, errno %s\n", r, err_name(r < 0 ? errno : 0));
  return 0;
}
