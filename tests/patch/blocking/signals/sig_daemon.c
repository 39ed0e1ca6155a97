/* The daemon shape (issue 20): main blocks SIGTERM, SIGINT and SIGHUP; 8 workers inherit the
   mask and wait (4 in pause, 4 in sigsuspend keeping the mask); one signal thread sigwaits for
   SIGHUP and SIGINT; main sigwaits for SIGTERM. The harness process sends SIGHUP then SIGINT
   with kill: each reaches the signal thread. Then, every thread waiting, it measures the daemon's CPU time over 2 s (natively ~0: nobody runs), and sends
   SIGTERM. The harness (this program) starts the daemon (this program with --daemon) and
   prints how it ended:
     sig_daemon exit     main's sigwait takes SIGTERM and exits with status 3
     sig_daemon default  the signal thread unblocks SIGTERM in its own mask and pauses: SIGTERM
                         reaches it and its default action kills the process */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int mode_default;

static void say(const char* s) {
  /* one write per line: the harness and the daemon share stdout */
  ssize_t r = write(1, s, strlen(s));
  (void)r;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}

static long cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char* p = strrchr(buf, ')');
  if (!p) return -1;
  unsigned long ut = 0, st = 0;
  /* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (long)(ut + st);
}

static int status_fd = -1;  /* the daemon's end of the pipe to the harness */

static void ack(void) {
  if (write(status_fd, "a", 1) != 1) _exit(1);
}

/* The harness: starts the daemon (this program again, under LD_PRELOAD if it is set),
   drives it, and says how it ended; exits 0 if it ran its course. */
static int harness(const char* self, const char* mode) {
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t d = fork();
  if (d == 0) {
    close(p[0]);
    if (p[1] != 3) {
      dup2(p[1], 3);
      close(p[1]);
    }
    execl(self, self, "--daemon", mode, (char*)NULL);
    _exit(127);
  }
  close(p[1]);
  char c;
  if (read(p[0], &c, 1) != 1) return 1;  /* its threads are started */
  sleep_ms(300);                          /* ...and waiting by now */
  kill(d, SIGHUP);
  if (read(p[0], &c, 1) != 1) return 1;  /* it took SIGHUP */
  kill(d, SIGINT);
  if (read(p[0], &c, 1) != 1) return 1;  /* it took SIGINT */
  sleep_ms(300);
  const long hz = sysconf(_SC_CLK_TCK);
  long before = cpu_ticks(d);
  sleep_ms(2000);
  long after = cpu_ticks(d);
  /* ~0 %: a generous bound of 5 % of the 2 s (natively it is 0 or 1 tick). */
  const int idle = before >= 0 && after - before <= hz / 10;
  if (!idle) fprintf(stderr, "harness: %ld ticks of CPU in 2 s (%ld per second)\n", after - before, hz);
  printf("harness: the daemon was idle for 2 s: %s\n", idle ? "yes" : "NO");
  fflush(stdout);
  kill(d, SIGTERM);
  int st = 0;
  while (waitpid(d, &st, WNOHANG) == 0) sleep_ms(20);  /* a reap that never holds the thread */
  if (WIFEXITED(st)) printf("harness: the daemon exited with %d\n", WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) printf("harness: the daemon was killed by %s\n", WTERMSIG(st) == SIGTERM ? "SIGTERM" : "another signal");
  return 0;
}

static void* worker(void* arg) {
  long i = (long)arg;
  if (i % 2 == 0) {
    for (;;) pause();
  } else {
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);  /* keeps TERM, INT, HUP blocked */
    for (;;) sigsuspend(&m);
  }
  return NULL;
}

static void* signal_thread(void* arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGHUP);
  sigaddset(&s, SIGINT);
  for (int n = 0; n < 2; ++n) {
    int sig = 0;
    int r = sigwait(&s, &sig);
    say(r != 0 ? "signal thread: sigwait failed\n"
        : sig == SIGHUP ? "signal thread: SIGHUP\n"
        : sig == SIGINT ? "signal thread: SIGINT\n" : "signal thread: another signal\n");
    ack();
  }
  if (mode_default) {
    sigset_t t;
    sigemptyset(&t);
    sigaddset(&t, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &t, NULL);
    for (;;) pause();
  }
  return NULL;
}

/* Every OS thread of the process blocks SIGHUP, SIGINT and SIGTERM (/proc/self/task/N/status,
   SigBlk): natively the program's threads, under ringlet-run also the carrier (main's mask)
   and every helper ringlet made (monitor, resolver, io workers), which must block them all so
   that a signal sent to the process stays pending for sigwait. */
static int all_threads_block(void) {
  DIR* d = opendir("/proc/self/task");
  if (!d) return 0;
  int ok = 1, n = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    FILE* f = fopen(path, "r");
    if (!f) continue;  /* ended meanwhile */
    while (fgets(line, sizeof line, f)) {
      unsigned long long m;
      if (sscanf(line, "SigBlk: %llx", &m) == 1) {
        const unsigned long long want = (1ull << (SIGHUP - 1)) | (1ull << (SIGINT - 1)) | (1ull << (SIGTERM - 1));
        if ((m & want) != want) {
          ok = 0;
          fprintf(stderr, "daemon: thread %s does not block them: SigBlk %llx\n", e->d_name, m);
        }
        ++n;
      }
    }
    fclose(f);
  }
  closedir(d);
  return ok && n > 0;
}

static int run_daemon(void) {
  status_fd = 3;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  pthread_t t;
  for (long i = 0; i < 8; ++i) pthread_create(&t, NULL, worker, (void*)i);
  /* a name lookup: under ringlet-run it starts the resolver threads. (Checked before the
     signal thread starts: a thread in sigwait shows its set unblocked in SigBlk.) */
  struct addrinfo* ai = NULL;
  if (getaddrinfo("localhost", "80", NULL, &ai) == 0) freeaddrinfo(ai);
  say(all_threads_block() ? "daemon: every OS thread blocks SIGHUP, SIGINT and SIGTERM\n"
                          : "daemon: an OS thread does NOT block SIGHUP, SIGINT or SIGTERM\n");
  pthread_create(&t, NULL, signal_thread, NULL);
  ack();
  if (mode_default) {
    /* main waits too, for a signal that never comes (its mask still blocks SIGTERM) */
    sigset_t u;
    sigemptyset(&u);
    sigaddset(&u, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &u, NULL);
    int sig;
    sigwait(&u, &sig);
    say("main: SIGUSR2?\n");
    return 1;
  }
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  int sig = 0;
  if (sigwait(&term, &sig) == 0 && sig == SIGTERM) say("main: SIGTERM, exiting with 3\n");
  exit(3);
}

int main(int argc, char** argv) {
  alarm(60);
  if (argc > 2 && !strcmp(argv[1], "--daemon")) {
    mode_default = !strcmp(argv[2], "default");
    return run_daemon();
  }
  if (argc < 2) {
    fprintf(stderr, "usage: sig_daemon exit|default\n");
    return 2;
  }
  return harness("/proc/self/exe", argv[1]);
}
