/* Waiting for signals (issue 20): one thread waits ~1 s for a signal another thread sends,
   while a third ticks. Natively the wait returns the signal after ~1 s and the ticks end at
   ~0.4 s; under ringlet-run before issue 20 the wait blocked the OS thread, so the sender
   never ran. One case per run: sig_waits CASE. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "ticker.h"

static int send_sig = SIGUSR1;
static int send_queue;  /* sigqueue with a value instead of kill */

static void* sender(void* arg) {
  (void)arg;
  sleep_ms(1000);
  if (send_queue) {
    union sigval v;
    v.sival_int = 4242;
    sigqueue(getpid(), send_sig, v);
  } else {
    kill(getpid(), send_sig);
  }
  return NULL;
}

/* SIGUSR1 after 0.5 s, then SIGUSR2 after 1 s */
static void* two_senders(void* arg) {
  (void)arg;
  sleep_ms(500);
  kill(getpid(), SIGUSR1);
  sleep_ms(500);
  kill(getpid(), SIGUSR2);
  return NULL;
}

static volatile sig_atomic_t handled;
static void on_signal(int sig) { handled = sig; }

static void block(int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static void handle(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = flags;
  sigaction(sig, &sa, NULL);
}

static void start_both(pthread_t* a, pthread_t* b) {
  *a = start_ticker();
  start_quiet(b, sender, NULL);
}

static void finish(pthread_t a, pthread_t b) {
  pthread_join(a, NULL);
  pthread_join(b, NULL);
}

static int case_sigwait(void) {
  block(SIGUSR1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_t a, b;
  start_both(&a, &b);
  int sig = 0;
  int r = sigwait(&s, &sig);
  printf("sigwait: %d, %s; %s\n", r, sig == SIGUSR1 ? "SIGUSR1" : "other", ticks_verdict());
  finish(a, b);
  return 0;
}

/* The waiting thread is not main: main blocks the signal before starting it (inherited). */
static void* waiter(void* arg) {
  sigset_t* s = arg;
  int sig = 0;
  int r = sigwait(s, &sig);
  printf("sigwait in a thread: %d, %s; %s\n", r, sig == SIGUSR2 ? "SIGUSR2" : "other", ticks_verdict());
  return NULL;
}

static int case_sigwait_thread(void) {
  block(SIGUSR2);
  static sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  send_sig = SIGUSR2;
  pthread_t w, a, b;
  pthread_create(&w, NULL, waiter, &s);
  start_both(&a, &b);
  pthread_join(w, NULL);
  finish(a, b);
  return 0;
}

static int case_sigwaitinfo(void) {
  block(SIGUSR1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  send_queue = 1;
  pthread_t a, b;
  start_both(&a, &b);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = sigwaitinfo(&s, &si);
  printf("sigwaitinfo: %s, si_signo %s, si_code %s, value %d, from us %s; %s\n",
         r == SIGUSR1 ? "SIGUSR1" : "other", si.si_signo == SIGUSR1 ? "SIGUSR1" : "other",
         si.si_code == SI_QUEUE ? "SI_QUEUE" : "other", si.si_value.sival_int,
         si.si_pid == getpid() ? "yes" : "no", ticks_verdict());
  finish(a, b);
  return 0;
}

static int case_sigtimedwait(void) {
  block(SIGUSR1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  /* Nothing comes: the timeout. */
  pthread_t a = start_ticker();
  struct timespec t = {0, 600 * 1000 * 1000};
  errno = 0;
  int r = sigtimedwait(&s, NULL, &t);
  printf("sigtimedwait, nothing sent: %d %s; %s\n", r, errno == EAGAIN ? "EAGAIN" : strerror(errno),
         ticks_verdict());
  pthread_join(a, NULL);
  /* A bad timeout: EINVAL at once. */
  struct timespec bad = {0, 2000000000L};
  errno = 0;
  r = sigtimedwait(&s, NULL, &bad);
  printf("sigtimedwait, bad timeout: %d %s\n", r, errno == EINVAL ? "EINVAL" : strerror(errno));
  /* The signal before the timeout. */
  pthread_t b;
  start_both(&a, &b);
  struct timespec t2 = {20, 0};
  siginfo_t si;
  r = sigtimedwait(&s, &si, &t2);
  printf("sigtimedwait, sent after 1 s: %s, si_code %s; %s\n", r == SIGUSR1 ? "SIGUSR1" : "other",
         si.si_code == SI_USER ? "SI_USER" : "other", ticks_verdict());
  finish(a, b);
  /* Already pending: at once. */
  raise(SIGUSR1);
  r = sigtimedwait(&s, NULL, &t2);
  printf("sigtimedwait, already pending: %s\n", r == SIGUSR1 ? "SIGUSR1" : "other");
  return 0;
}

/* sigwait for SIGUSR2 while a handler of SIGUSR1 (not blocked) runs: it waits on (never
   EINTR) and returns SIGUSR2. */
static int case_sigwait_handler(void) {
  block(SIGUSR2);
  handle(SIGUSR1, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_t a = start_ticker(), b;
  start_quiet(&b, two_senders, NULL);
  int sig = 0;
  int r = sigwait(&s, &sig);
  printf("sigwait across a handler: %d, %s, handler ran %s; %s\n", r, sig == SIGUSR2 ? "SIGUSR2" : "other",
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  finish(a, b);
  return 0;
}

/* sigwaitinfo for SIGUSR2 while a handler of SIGUSR1 (not blocked) runs: EINTR. */
static int case_sigwaitinfo_eintr(void) {
  block(SIGUSR2);
  handle(SIGUSR1, 0);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_t a, b;
  start_both(&a, &b);
  errno = 0;
  int r = sigwaitinfo(&s, NULL);
  printf("sigwaitinfo interrupted: %d %s, handler ran %s; %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  finish(a, b);
  return 0;
}

static int case_sigsuspend(void) {
  block(SIGUSR1);
  handle(SIGUSR1, SA_RESTART);
  sigset_t none;
  sigemptyset(&none);
  pthread_t a, b;
  start_both(&a, &b);
  errno = 0;
  int r = sigsuspend(&none);
  printf("sigsuspend: %d %s, handler ran %s; %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("sigsuspend: mask restored: %s\n", sigismember(&now, SIGUSR1) ? "yes" : "no");
  finish(a, b);
  /* A signal pending when sigsuspend unblocks it: its handler runs at once. */
  handled = 0;
  raise(SIGUSR1);
  r = sigsuspend(&none);
  printf("sigsuspend, already pending: %d %s, handler ran %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no");
  return 0;
}

static int case_pause(void) {
  handle(SIGUSR1, SA_RESTART);
  pthread_t a, b;
  start_both(&a, &b);
  errno = 0;
  int r = pause();
  printf("pause: %d %s, handler ran %s; %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  finish(a, b);
  return 0;
}

/* pause in a thread that unblocked the signal itself, while main (and so the rest of the
   process) keeps it blocked: natively the signal reaches that thread. */
static void* pauser(void* arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  errno = 0;
  int r = pause();
  printf("pause in a thread: %d %s, handler ran %s; %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  return NULL;
}

static int case_pause_thread(void) {
  block(SIGUSR1);
  handle(SIGUSR1, SA_RESTART);
  pthread_t p, a, b;
  pthread_create(&p, NULL, pauser, NULL);
  start_both(&a, &b);
  pthread_join(p, NULL);
  finish(a, b);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("main's mask still blocks it: %s\n", sigismember(&now, SIGUSR1) ? "yes" : "no");
  return 0;
}

/* ppoll in a thread, with a mask that unblocks the signal main blocks: the signal
   interrupts it (EINTR) and its handler runs, as natively. */
static void* ppoller(void* arg) {
  int fd = *(int*)arg;
  sigset_t none;
  sigemptyset(&none);
  struct pollfd p = {fd, POLLIN, 0};
  errno = 0;
  int r = ppoll(&p, 1, NULL, &none);
  printf("ppoll in a thread: %d %s, handler ran %s; %s\n", r, errno == EINTR ? "EINTR" : strerror(errno),
         handled == SIGUSR1 ? "yes" : "no", ticks_verdict());
  return NULL;
}

static int case_ppoll_thread(void) {
  block(SIGUSR1);
  handle(SIGUSR1, SA_RESTART);
  int p[2];
  if (pipe(p) != 0) return 1;
  pthread_t t, a, b;
  pthread_create(&t, NULL, ppoller, &p[0]);
  start_both(&a, &b);
  pthread_join(t, NULL);
  finish(a, b);
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, NULL, &now);
  printf("main's mask still blocks it: %s\n", sigismember(&now, SIGUSR1) ? "yes" : "no");
  return 0;
}

static int case_signalfd(void) {
  block(SIGUSR1);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  int fd = signalfd(-1, &s, SFD_CLOEXEC);
  int nb = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
  struct signalfd_siginfo si;
  errno = 0;
  ssize_t n = read(nb, &si, sizeof si);
  printf("signalfd, non-blocking and nothing pending: %zd %s\n", n, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  pthread_t a, b;
  start_both(&a, &b);
  n = read(fd, &si, sizeof si);
  printf("signalfd read: %s, ssi_signo %s, ssi_code %s; %s\n", n == (ssize_t)sizeof si ? "whole" : "short",
         si.ssi_signo == SIGUSR1 ? "SIGUSR1" : "other", si.ssi_code == SI_USER ? "SI_USER" : "other",
         ticks_verdict());
  finish(a, b);
  errno = 0;
  n = read(fd, &si, 4);
  printf("signalfd, short buffer: %zd %s\n", n, errno == EINVAL ? "EINVAL" : strerror(errno));
  close(fd);
  close(nb);
  return 0;
}

int main(int argc, char** argv) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* c = argc > 1 ? argv[1] : "";
  if (!strcmp(c, "sigwait")) return case_sigwait();
  if (!strcmp(c, "sigwait-thread")) return case_sigwait_thread();
  if (!strcmp(c, "sigwait-handler")) return case_sigwait_handler();
  if (!strcmp(c, "sigwaitinfo")) return case_sigwaitinfo();
  if (!strcmp(c, "sigwaitinfo-eintr")) return case_sigwaitinfo_eintr();
  if (!strcmp(c, "sigtimedwait")) return case_sigtimedwait();
  if (!strcmp(c, "sigsuspend")) return case_sigsuspend();
  if (!strcmp(c, "pause")) return case_pause();
  if (!strcmp(c, "pause-thread")) return case_pause_thread();
  if (!strcmp(c, "signalfd")) return case_signalfd();
  if (!strcmp(c, "ppoll-thread")) return case_ppoll_thread();
  fprintf(stderr, "usage: sig_waits CASE\n");
  return 2;
}
