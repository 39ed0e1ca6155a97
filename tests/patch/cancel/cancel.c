// pthread_cancel of threads parked at cancellation points (issue 19): natively and under
// ringlet-run (tests/patch/compare.sh), the same stdout. Built as C without -fexceptions
// (pthread_cleanup_push is glibc's __pthread_register_cancel form) and, by cancel_cpp.cpp,
// as C++ (the destructor form), where each thread also holds an object whose destructor
// logs. The threads log into a buffer; main prints it after the joins.
//   cancel MODE   (read sleep cond accept poll join sem disabled self completed exit nested
//                  mixed main main-exit, point-CALL: point_call's list)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // ppoll
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char logbuf[4096];
static size_t loglen;
// Threads of two carriers (or two CPUs) may log at the same time: each line's place is
// taken with one atomic add.
static void note(const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n <= 0) return;
  if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
  size_t at = __atomic_fetch_add(&loglen, (size_t)n, __ATOMIC_SEQ_CST);
  if (at + (size_t)n < sizeof logbuf) memcpy(logbuf + at, line, (size_t)n);
}

#ifdef __cplusplus
struct Guard {
  const char* what;
  explicit Guard(const char* w) : what(w) {}
  ~Guard() { note("destructor %s\n", what); }
};
#define GUARD(name) Guard guard_(name)
#else
#define GUARD(name) (void)0
#endif

static void cleanup(void* arg) { note("cleanup %s\n", (const char*)arg); }

static int pfd[2];
static int lfd = -1;
static pthread_mutex_t mu;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static pthread_t other;

// The cond handler: the mutex is held again when it runs (an error-checking mutex refuses
// an unlock by a thread that does not hold it).
static void unlock_mu(void* arg) {
  (void)arg;
  int e = pthread_mutex_unlock(&mu);
  note("cleanup cond: unlock %s\n", e == 0 ? "ok (held)" : strerror(e));
}

static void* t_read(void* a) {
  (void)a;
  GUARD("read");
  char c;
  pthread_cleanup_push(cleanup, (void*)"read");
  ssize_t n = read(pfd[0], &c, 1);
  note("read returned %d (not reached)\n", (int)n);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_sleep(void* a) {
  (void)a;
  GUARD("sleep");
  pthread_cleanup_push(cleanup, (void*)"sleep");
  unsigned left = sleep(20);
  note("sleep returned %u (not reached)\n", left);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_cond(void* a) {
  (void)a;
  GUARD("cond");
  pthread_mutex_lock(&mu);
  pthread_cleanup_push(unlock_mu, NULL);
  for (;;) pthread_cond_wait(&cv, &mu);
  pthread_cleanup_pop(1);
  return NULL;
}

static void* t_accept(void* a) {
  (void)a;
  GUARD("accept");
  pthread_cleanup_push(cleanup, (void*)"accept");
  int c = accept(lfd, NULL, NULL);
  note("accept returned %d (not reached)\n", c);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_poll(void* a) {
  (void)a;
  GUARD("poll");
  pthread_cleanup_push(cleanup, (void*)"poll");
  struct pollfd p = {pfd[0], POLLIN, 0};
  int n = poll(&p, 1, -1);
  note("poll returned %d (not reached)\n", n);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_join(void* a) {
  (void)a;
  GUARD("join");
  pthread_cleanup_push(cleanup, (void*)"join");
  int e = pthread_join(other, NULL);
  note("join returned %d (not reached)\n", e);
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_sem(void* a) {
  (void)a;
  GUARD("sem");
  pthread_cleanup_push(cleanup, (void*)"sem");
  int e = sem_wait(&sem);
  note("sem_wait returned %d (not reached)\n", e);
  pthread_cleanup_pop(0);
  return NULL;
}

static volatile int stage;

// Cancellation disabled: a cancel during its sleep changes nothing; once enabled, the next
// point (a read with a byte waiting) acts at entry, leaving the byte in the pipe.
static void* t_disabled(void* a) {
  (void)a;
  GUARD("disabled");
  pthread_cleanup_push(cleanup, (void*)"disabled");
  int old = -1;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  note("old state %s\n", old == PTHREAD_CANCEL_ENABLE ? "enabled" : "disabled");
  int r = usleep(300 * 1000);
  note("usleep while disabled returned %d\n", r);
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
  note("enabled again (old state %s)\n", old == PTHREAD_CANCEL_DISABLE ? "disabled" : "enabled");
  char c;
  ssize_t n = read(pfd[0], &c, 1);
  note("read returned %d (not reached)\n", (int)n);
  pthread_cleanup_pop(0);
  return NULL;
}

// A cancel pending before a point is entered: it acts at the point's entry.
static void* t_self(void* a) {
  (void)a;
  GUARD("self");
  pthread_cleanup_push(cleanup, (void*)"self");
  int e = pthread_cancel(pthread_self());
  note("pthread_cancel(self) returned %d; going on\n", e);
  char c;
  ssize_t n = read(pfd[0], &c, 1);  // a byte is waiting: acts at entry anyway
  note("read returned %d (not reached)\n", (int)n);
  pthread_cleanup_pop(0);
  return NULL;
}

// The read completes before the cancel comes: it returns its data; the cancel acts at the
// next point. (Main cancels once the read has returned: glibc 2.36 itself loses, now and
// then, a cancel sent while the woken read is on its way out, so a closer race is no
// deterministic comparison.)
static volatile int got, sent;
static void* t_completed(void* a) {
  (void)a;
  GUARD("completed");
  pthread_cleanup_push(cleanup, (void*)"completed");
  char buf[8] = {0};
  ssize_t n = read(pfd[0], buf, sizeof buf - 1);
  note("read returned %d '%s'\n", (int)n, buf);
  got = 1;
  while (!sent) sched_yield();  // not a cancellation point
  pthread_testcancel();
  note("after pthread_testcancel (not reached)\n");
  pthread_cleanup_pop(0);
  return NULL;
}

static void* t_exit(void* a) {
  (void)a;
  GUARD("exit");
  pthread_cleanup_push(cleanup, (void*)"exit");
  pthread_exit((void*)42);
  pthread_cleanup_pop(0);
  return NULL;
}

// Handlers of nested frames run innermost first, each when its frame is left.
static void nested_inner(void) {
  GUARD("inner frame");
  pthread_cleanup_push(cleanup, (void*)"inner 2");
  pthread_cleanup_push(cleanup, (void*)"inner 1");
  pthread_cleanup_push(cleanup, (void*)"popped, not run");
  pthread_cleanup_pop(0);
  sleep(20);
  pthread_cleanup_pop(0);
  pthread_cleanup_pop(0);
}
static void* t_nested(void* a) {
  (void)a;
  GUARD("outer frame");
  pthread_cleanup_push(cleanup, (void*)"outer");
  nested_inner();
  pthread_cleanup_pop(0);
  return NULL;
}

// main cancelled by a thread (or ending by pthread_exit): its cleanup handler runs, the
// thread goes on and prints, and the process ends when it does (exit status 0).
static pthread_t main_thread;
static int main_exits;
// What pthread_cancel returned is printed first, after the log: main's cleanup may log
// before the call has returned here (natively main is woken by a signal; on two carriers
// at once), and that order is not what the test is about.
static void* t_main_watcher(void* a) {
  (void)a;
  usleep(100 * 1000);
  int e = -1;
  if (!main_exits) e = pthread_cancel(main_thread);
  usleep(200 * 1000);
  note("the thread outlives main\n");
  if (!main_exits) printf("pthread_cancel(main) returned %d\n", e);
  fputs(logbuf, stdout);
  return NULL;
}
static int main_mode(int exits) {
  main_exits = exits;
  main_thread = pthread_self();
  GUARD("main");
  pthread_t t;
  if (pthread_create(&t, NULL, t_main_watcher, NULL) != 0) return 1;
  pthread_cleanup_push(cleanup, (void*)"main");
  if (exits) pthread_exit(NULL);
  sleep(20);
  note("main's sleep returned (not reached)\n");
  pthread_cleanup_pop(0);
  return 3;
}

// More cancellation points, each parked for good until the cancel: the call must not
// return (its thread logs only its cleanup handler).
static int point_call(const char* m) {
  struct timespec ts = {20, 0};
  if (!strcmp(m, "nanosleep")) return nanosleep(&ts, NULL);
  if (!strcmp(m, "clock_nanosleep")) return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
  if (!strcmp(m, "usleep")) return usleep(20 * 1000 * 1000 - 1);
  if (!strcmp(m, "select")) {
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(pfd[0], &rs);
    return select(pfd[0] + 1, &rs, NULL, NULL, NULL);
  }
  if (!strcmp(m, "pselect")) {
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(pfd[0], &rs);
    return pselect(pfd[0] + 1, &rs, NULL, NULL, &ts, NULL);
  }
  if (!strcmp(m, "ppoll")) {
    struct pollfd p = {pfd[0], POLLIN, 0};
    return ppoll(&p, 1, &ts, NULL);
  }
  if (!strcmp(m, "epoll_wait")) {
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN, {0}};
    epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev);
    return epoll_wait(ep, &ev, 1, -1);
  }
  if (!strcmp(m, "write")) {  // a full pipe
    fcntl(pfd[1], F_SETFL, O_NONBLOCK);
    static char big[65536];
    while (write(pfd[1], big, sizeof big) > 0) {}
    fcntl(pfd[1], F_SETFL, 0);
    return (int)write(pfd[1], big, sizeof big);
  }
  if (!strcmp(m, "recv")) {
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    char c;
    return (int)recv(sv[0], &c, 1, 0);
  }
  if (!strcmp(m, "sigwait")) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int sig;
    return sigwait(&set, &sig);
  }
  if (!strcmp(m, "sigtimedwait")) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    return sigtimedwait(&set, NULL, &ts);
  }
  if (!strcmp(m, "pause")) return pause();
  if (!strcmp(m, "waitpid")) {
    pid_t child = fork();
    if (child == 0) {
      sleep(2);
      _exit(0);
    }
    return (int)waitpid(child, NULL, 0);
  }
  if (!strcmp(m, "cond_timedwait")) {
    pthread_mutex_lock(&mu);
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += 20;
    int e = pthread_cond_timedwait(&cv, &mu, &at);
    pthread_mutex_unlock(&mu);
    return e;
  }
  if (!strcmp(m, "sem_timedwait")) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += 20;
    return sem_timedwait(&sem, &at);
  }
  return -100;
}
static const char* point_mode;
static void* t_point(void* a) {
  (void)a;
  GUARD(point_mode);
  pthread_cleanup_push(cleanup, (void*)point_mode);
  int r = point_call(point_mode);
  note("%s returned %d (not reached)\n", point_mode, r);
  pthread_cleanup_pop(0);
  return NULL;
}

// C frame -> C++ frame (mixed.cpp) -> C frame, each with its cleanup: innermost first.
#ifdef __cplusplus
extern "C" {
#endif
void cancel_note(const char* what) { note("%s", what); }
void cancel_cxx_middle(void (*inner)(void));
#ifdef __cplusplus
}
#endif
static void mixed_inner(void) {
  pthread_cleanup_push(cleanup, (void*)"inner C frame");
  sleep(20);
  pthread_cleanup_pop(0);
}
static void* t_mixed(void* a) {
  (void)a;
  pthread_cleanup_push(cleanup, (void*)"outer C frame");
  cancel_cxx_middle(mixed_inner);
  pthread_cleanup_pop(0);
  return NULL;
}

static void report(const char* what, void* res) {
  if (res == PTHREAD_CANCELED) printf("%s: joined, PTHREAD_CANCELED\n", what);
  else printf("%s: joined, %ld\n", what, (long)res);
}

int main(int argc, char** argv) {
  alarm(20);
  if (argc < 2) return 2;
  const char* mode = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (pipe(pfd) != 0) return 1;
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&mu, &ma);
  sem_init(&sem, 0, 0);
  void* (*fn)(void*) = NULL;
  if (!strcmp(mode, "main")) return main_mode(0);
  if (!strcmp(mode, "main-exit")) return main_mode(1);
  if (!strcmp(mode, "read")) fn = t_read;
  else if (!strcmp(mode, "sleep")) fn = t_sleep;
  else if (!strcmp(mode, "cond")) fn = t_cond;
  else if (!strcmp(mode, "poll")) fn = t_poll;
  else if (!strcmp(mode, "join")) fn = t_join;
  else if (!strcmp(mode, "sem")) fn = t_sem;
  else if (!strcmp(mode, "disabled")) fn = t_disabled;
  else if (!strcmp(mode, "self")) fn = t_self;
  else if (!strcmp(mode, "completed")) fn = t_completed;
  else if (!strcmp(mode, "exit")) fn = t_exit;
  else if (!strcmp(mode, "nested")) fn = t_nested;
  else if (!strcmp(mode, "mixed")) fn = t_mixed;
  else if (!strncmp(mode, "point-", 6)) {
    fn = t_point;
    point_mode = mode + 6;
  }
  else if (!strcmp(mode, "accept")) {
    fn = t_accept;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(lfd, 4) != 0) return 1;
  } else {
    return 2;
  }
  if (!strcmp(mode, "join") && pthread_create(&other, NULL, t_sleep, NULL) != 0) return 1;
  if (!strcmp(mode, "self")) write(pfd[1], "x", 1);
  pthread_t t;
  if (pthread_create(&t, NULL, fn, NULL) != 0) return 1;
  usleep(100 * 1000);  // it is parked by now
  if (!strcmp(mode, "disabled")) write(pfd[1], "x", 1);
  if (!strcmp(mode, "completed")) {
    write(pfd[1], "abc", 3);
    while (!got) usleep(1000);
  }
  int e = pthread_cancel(t);
  sent = 1;
  if (e) printf("pthread_cancel: %s\n", strerror(e));
  void* res = NULL;
  e = pthread_join(t, &res);
  if (e) printf("pthread_join: %s\n", strerror(e));
  report(mode, res);
  if (!strcmp(mode, "join")) {
    pthread_cancel(other);
    pthread_join(other, &res);
    report("the joined thread", res);
  }
  if (!strcmp(mode, "disabled") || !strcmp(mode, "self")) {
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    char c = 0;
    ssize_t n = read(pfd[0], &c, 1);
    printf("byte left in the pipe: %s\n", n == 1 && c == 'x' ? "yes" : "no");
  }
  if (!strcmp(mode, "cond")) {
    e = pthread_mutex_trylock(&mu);
    printf("mutex free after the cancel: %s\n", e == 0 ? "yes" : strerror(e));
  }
  fputs(logbuf, stdout);
  return 0;
}
