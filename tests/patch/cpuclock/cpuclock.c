// Each thread's CPU clock is its own (issue 19): natively, and under ringlet-run where the
// threads are fibers of one OS thread. Prints verdicts only (the figures go to stderr).
//   cpuclock threads   a spinner (~200 ms of CPU) and a sleeper (200 ms): each one's
//                      CLOCK_THREAD_CPUTIME_ID and getrusage(RUSAGE_THREAD) show its own time
//                      (within a tenth; the sleeper's ~0), main reads the spinner's clock by
//                      pthread_getcpuclockid, the spinner reads main's, main's own clock does
//                      not hold the spinner's time; clock_getres of a thread's clock
//   cpuclock ended     a thread's clock once the thread has ended: clock_gettime and
//                      clock_getres with the clock id taken while it lived, and
//                      pthread_getcpuclockid of it (exited, not yet joined)
//   cpuclock own-sleep clock_nanosleep on the caller's own CPU clock (EINVAL), and a
//                      clock_settime of a thread's CPU clock (EPERM)
//   cpuclock fork      a forked child's thread starts a CPU clock of its own at ~0: fork
//                      after 100 ms of CPU from main, then from a thread
//   cpuclock sleep-other
//                      clock_nanosleep on another thread's CPU clock: 100 ms of a thread that
//                      spins for 300 ms of CPU returns once that clock went 100 ms (and before
//                      250: a timer on a fiber may fire up to 64 switches late); an absolute
//                      5 s on it, which it never reaches (it ends), waits until a signal
//                      handler runs (EINTR)
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static int64_t ns_of(clockid_t c) {
  struct timespec ts;
  if (clock_gettime(c, &ts) != 0) {
    fprintf(stderr, "clock_gettime(%d): %s\n", (int)c, strerror(errno));
    return -1;
  }
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t rusage_ns(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return -1;
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

// Verdicts are kept per thread and printed by main in a fixed order (the threads finish in
// either order).
struct log {
  char text[1024];
  size_t len;
};

static void verdict(struct log* l, const char* what, int64_t got, int64_t lo, int64_t hi) {
  fprintf(stderr, "%s: %.1f ms (expected %.1f..%.1f)\n", what, got / 1e6, lo / 1e6, hi / 1e6);
  l->len += (size_t)snprintf(l->text + l->len, sizeof l->text - l->len, "%s %s\n", what,
                             got >= lo && got <= hi ? "ok" : "WRONG");
}

// --- threads -------------------------------------------------------------------------------

static sem_t spun, read_done;
static clockid_t main_clock;
static int64_t spinner_saw_main;
static struct log spinner_log, sleeper_log, main_log;

static void* spinner(void* arg) {
  (void)arg;
  const int64_t own0 = ns_of(CLOCK_THREAD_CPUTIME_ID), ru0 = rusage_ns();
  // 200 ms of the process's CPU time, all of it this thread's (the others sleep), yielding
  // every millisecond or so (natively nothing; on fibers the sleeper runs meanwhile).
  const int64_t p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
  int64_t last = p0, now;
  while ((now = ns_of(CLOCK_PROCESS_CPUTIME_ID)) - p0 < 200 * MS) {
    if (now - last >= 1 * MS) {
      sched_yield();
      last = now;
    }
  }
  verdict(&spinner_log, "spinner: its own CLOCK_THREAD_CPUTIME_ID", ns_of(CLOCK_THREAD_CPUTIME_ID) - own0, 180 * MS, 220 * MS);
  verdict(&spinner_log, "spinner: its own getrusage(RUSAGE_THREAD)", rusage_ns() - ru0, 180 * MS, 220 * MS);
  spinner_saw_main = ns_of(main_clock);
  sem_post(&spun);
  sem_wait(&read_done);  // main reads this thread's clock while it lives
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  const int64_t own0 = ns_of(CLOCK_THREAD_CPUTIME_ID), ru0 = rusage_ns();
  usleep(200 * 1000);
  verdict(&sleeper_log, "sleeper: its own CLOCK_THREAD_CPUTIME_ID", ns_of(CLOCK_THREAD_CPUTIME_ID) - own0, 0, 10 * MS);
  verdict(&sleeper_log, "sleeper: its own getrusage(RUSAGE_THREAD)", rusage_ns() - ru0, 0, 10 * MS);
  return NULL;
}

static int threads(void) {
  sem_init(&spun, 0, 0);
  sem_init(&read_done, 0, 0);
  if (pthread_getcpuclockid(pthread_self(), &main_clock) != 0) return 1;
  const int64_t main0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
  const int64_t main_by_id0 = ns_of(main_clock);
  verdict(&main_log, "main: its clock by pthread_getcpuclockid, against CLOCK_THREAD_CPUTIME_ID",
          main_by_id0 - main0, -2 * MS, 2 * MS);
  pthread_t s, z;
  pthread_create(&s, NULL, spinner, NULL);
  pthread_create(&z, NULL, sleeper, NULL);
  clockid_t sc;
  int e = pthread_getcpuclockid(s, &sc);
  if (e) {
    printf("pthread_getcpuclockid of a thread: %s\n", strerrorname_np(e));
    return 1;
  }
  sem_wait(&spun);
  verdict(&main_log, "main: the spinner's clock by pthread_getcpuclockid", ns_of(sc), 180 * MS, 240 * MS);
  struct timespec res;
  e = clock_getres(sc, &res);
  main_log.len += (size_t)snprintf(main_log.text + main_log.len, sizeof main_log.text - main_log.len,
                                   "clock_getres of the spinner's clock: %s, %ld ns\n",
                                   e ? strerrorname_np(errno) : "ok", e ? 0L : res.tv_nsec);
  verdict(&main_log, "spinner: main's clock read from the spinner", spinner_saw_main - main0, -2 * MS, 20 * MS);
  sem_post(&read_done);
  pthread_join(s, NULL);
  pthread_join(z, NULL);
  verdict(&main_log, "main: its own CLOCK_THREAD_CPUTIME_ID, without the spinner's time",
          ns_of(CLOCK_THREAD_CPUTIME_ID) - main0, 0, 20 * MS);
  verdict(&main_log, "main: its own clock by pthread_getcpuclockid", ns_of(main_clock) - main_by_id0, 0, 20 * MS);
  fputs(spinner_log.text, stdout);
  fputs(sleeper_log.text, stdout);
  fputs(main_log.text, stdout);
  return strstr(spinner_log.text, "WRONG") || strstr(sleeper_log.text, "WRONG") || strstr(main_log.text, "WRONG");
}

// --- ended ---------------------------------------------------------------------------------

static void* quick(void* arg) {
  (void)arg;
  sem_wait(&spun);  // until main has its clock id
  return NULL;
}

static int ended(void) {
  pthread_t t;
  sem_init(&spun, 0, 0);
  pthread_create(&t, NULL, quick, NULL);
  clockid_t c;
  int e = pthread_getcpuclockid(t, &c);
  if (e != 0) {
    printf("pthread_getcpuclockid before the end: %s\n", strerrorname_np(e));
    return 1;
  }
  sem_post(&spun);
  // Wait (up to 2 s) for the clock to go away with the thread.
  int r = 0;
  struct timespec ts;
  for (int i = 0; i < 2000; ++i) {
    r = clock_gettime(c, &ts);
    if (r != 0) break;
    usleep(1000);
  }
  printf("clock_gettime of an ended thread's clock: %s\n", r ? strerrorname_np(errno) : "still answers");
  r = clock_getres(c, &ts);
  printf("clock_getres of an ended thread's clock: %s\n", r ? strerrorname_np(errno) : "answers");
  e = pthread_getcpuclockid(t, &c);
  printf("pthread_getcpuclockid of an ended thread, not joined: %s\n", e ? strerrorname_np(e) : "ok");
  pthread_join(t, NULL);
  return 0;
}

// --- own-sleep -----------------------------------------------------------------------------

static void* own_sleep_thread(void* arg) {
  (void)arg;
  struct timespec d = {0, 1000};
  int e = clock_nanosleep(CLOCK_THREAD_CPUTIME_ID, 0, &d, NULL);
  printf("thread: clock_nanosleep(CLOCK_THREAD_CPUTIME_ID): %s\n", e ? strerrorname_np(e) : "ok");
  clockid_t c;
  pthread_getcpuclockid(pthread_self(), &c);
  struct timespec z = {0, 0};
  int r = clock_settime(c, &z);
  printf("thread: clock_settime of its own clock: %s\n", r ? strerrorname_np(errno) : "ok");
  return NULL;
}

static int own_sleep(void) {
  pthread_t t;
  pthread_create(&t, NULL, own_sleep_thread, NULL);
  pthread_join(t, NULL);
  return 0;
}

// --- fork ----------------------------------------------------------------------------------

static void spin_process_cpu(int64_t ns) {
  const int64_t p0 = ns_of(CLOCK_PROCESS_CPUTIME_ID);
  while (ns_of(CLOCK_PROCESS_CPUTIME_ID) - p0 < ns) {
  }
}

// Fork after spinning: the child's own clock starts near 0, the parent's keeps its time.
static void fork_after_spin(const char* who) {
  spin_process_cpu(100 * MS);
  const int64_t before = ns_of(CLOCK_THREAD_CPUTIME_ID);
  fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    const int64_t child = ns_of(CLOCK_THREAD_CPUTIME_ID);
    fprintf(stderr, "%s: child's clock %.1f ms\n", who, child / 1e6);
    printf("%s: the child's own clock starts afresh %s\n", who, child < 20 * MS ? "ok" : "WRONG");
    fflush(stdout);
    _exit(0);
  }
  int status;
  waitpid(pid, &status, 0);
  fprintf(stderr, "%s: parent's clock %.1f ms\n", who, before / 1e6);
  printf("%s: the parent's clock kept its time %s\n", who, before >= 90 * MS ? "ok" : "WRONG");
}

static void* fork_thread(void* arg) {
  (void)arg;
  fork_after_spin("thread");
  return NULL;
}

static int fork_test(void) {
  fork_after_spin("main");
  pthread_t t;
  pthread_create(&t, NULL, fork_thread, NULL);
  pthread_join(t, NULL);
  return 0;
}

// --- sleep-other ---------------------------------------------------------------------------

static double mono_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// 300 ms of its own CPU time, yielding every millisecond of it.
static void* cpu_spinner(void* arg) {
  (void)arg;
  const int64_t t0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
  int64_t last = t0, now;
  while ((now = ns_of(CLOCK_THREAD_CPUTIME_ID)) - t0 < 300 * MS) {
    if (now - last >= 1 * MS) {
      sched_yield();
      last = now;
    }
  }
  return NULL;
}

static void on_usr1(int sig) { (void)sig; }

static int sleep_other(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;  // no SA_RESTART (it does not matter: sleeps are never restarted)
  sigaction(SIGUSR1, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, cpu_spinner, NULL);
  clockid_t c;
  if (pthread_getcpuclockid(t, &c) != 0) return 1;
  const int64_t before = ns_of(c);
  struct timespec d = {0, 100 * MS};
  double a = mono_s();
  int e = clock_nanosleep(c, 0, &d, NULL);
  double took = mono_s() - a;
  const int64_t cpu = ns_of(c) - before;
  fprintf(stderr, "relative 100 ms: %.3f s, the thread's clock went %.1f ms\n", took, cpu / 1e6);
  // It returns once the clock has reached the target, and well before the spinner's end (on
  // fibers the timer may fire late by up to 64 of the spinner's yields: 64 ms).
  printf("relative 100 ms on a spinning thread's clock: %s, %s\n", e ? strerrorname_np(e) : "0",
         cpu >= 100 * MS && cpu < 250 * MS ? "on time" : "WRONG");
  // SIGUSR1 in 0.6 s, when the spinner has long ended.
  timer_t tm;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR1;
  timer_create(CLOCK_MONOTONIC, &ev, &tm);
  struct itimerspec its = {{0, 0}, {0, 600 * MS}};
  timer_settime(tm, 0, &its, NULL);
  d.tv_sec = 5;
  d.tv_nsec = 0;
  a = mono_s();
  e = clock_nanosleep(c, TIMER_ABSTIME, &d, NULL);
  took = mono_s() - a;
  fprintf(stderr, "absolute 5 s: %.3f s\n", took);
  printf("absolute 5 s on the clock of a thread that ends: %s, %s\n", e ? strerrorname_np(e) : "0",
         took > 0.4 && took < 2 ? "at the signal" : "WRONG");
  pthread_join(t, NULL);
  return 0;
}

int main(int argc, char** argv) {
  alarm(20);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2 && strcmp(argv[1], "threads") == 0) return threads();
  if (argc == 2 && strcmp(argv[1], "ended") == 0) return ended();
  if (argc == 2 && strcmp(argv[1], "own-sleep") == 0) return own_sleep();
  if (argc == 2 && strcmp(argv[1], "sleep-other") == 0) return sleep_other();
  if (argc == 2 && strcmp(argv[1], "fork") == 0) return fork_test();
  fprintf(stderr, "usage: cpuclock threads|ended|own-sleep|fork|sleep-other\n");
  return 2;
}
