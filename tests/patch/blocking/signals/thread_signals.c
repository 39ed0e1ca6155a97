// Signals and threads (issue 19): each thread has its own mask; a signal sent to the process
// is handled by a thread that does not block it, one sent to a thread (pthread_kill, tgkill,
// raise) by that thread; only the blocking call of the thread that ran the handler ends with
// EINTR (or restarts, as SA_RESTART says). Run natively and under ringlet-run by compare.sh:
// the same output. Each case prints what it saw; exit 0 when every check held.
//   thread_signals daemon|process|directed|restart|pending|self|sigwait-directed|altstack|spawn-mask
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define N 8

static __thread int t_index = -1;  // which worker runs here (-1: main)
static atomic_int g_handled_by = -2;
static atomic_int g_handled = 0;
static atomic_int g_gettid_ok = 0;
static pid_t g_tids[N];

static int g_pipes[N][2];
static pthread_t g_workers[N];
static atomic_int g_read_result[N];  // 0 running, 1 data, 2 EINTR, 3 other
static atomic_int g_ready = 0;
static int g_failed = 0;

static void check(int ok, const char* what) {
  printf("%s: %s\n", what, ok ? "ok" : "WRONG");
  if (!ok) g_failed = 1;
}

static void on_usr1(int sig) {
  (void)sig;
  atomic_store(&g_handled_by, t_index);
  if (t_index >= 0) atomic_store(&g_gettid_ok, (pid_t)syscall(SYS_gettid) == g_tids[t_index]);
  atomic_fetch_add(&g_handled, 1);
}

static void install(int sig, int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct worker_arg {
  int index;
  int unblock;  // signal this worker unblocks (0: none)
};

// Each worker reads its pipe once: data, EINTR, or an error.
static void* reader(void* p) {
  struct worker_arg* a = p;
  t_index = a->index;
  g_tids[a->index] = (pid_t)syscall(SYS_gettid);
  if (a->unblock) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, a->unblock);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  }
  atomic_fetch_add(&g_ready, 1);
  char c;
  ssize_t n = read(g_pipes[a->index][0], &c, 1);
  atomic_store(&g_read_result[a->index], n == 1 ? 1 : (n < 0 && errno == EINTR) ? 2 : 3);
  return NULL;
}

static struct worker_arg g_args[N];

static void start_readers(int unblock_index, int unblock_sig) {
  atomic_store(&g_ready, 0);
  for (int i = 0; i < N; ++i) {
    if (pipe(g_pipes[i]) != 0) abort();
    g_read_result[i] = 0;
    g_args[i].index = i;
    g_args[i].unblock = i == unblock_index ? unblock_sig : 0;
    pthread_create(&g_workers[i], NULL, reader, &g_args[i]);
  }
  while (atomic_load(&g_ready) < N) sleep_ms(1);
  sleep_ms(50);  // every reader parked in read
}

// Ends the readers still reading (with a byte each) and joins them all.
static void finish_readers(void) {
  for (int i = 0; i < N; ++i) {
    if (atomic_load(&g_read_result[i]) == 0 && write(g_pipes[i][1], "x", 1) != 1) abort();
    pthread_join(g_workers[i], NULL);
    close(g_pipes[i][0]);
    close(g_pipes[i][1]);
  }
}

static int count_results(int what, int except) {
  int n = 0;
  for (int i = 0; i < N; ++i)
    if (i != except && atomic_load(&g_read_result[i]) == what) ++n;
  return n;
}

// --- daemon: main blocks SIGTERM/SIGINT/SIGHUP, the workers inherit, one sigwaits -------
static sigset_t g_term_set;
static atomic_int g_waited[3];

static void* waiter(void* p) {
  (void)p;
  for (int k = 0; k < 3; ++k) {
    int sig = 0;
    if (sigwait(&g_term_set, &sig) != 0) return NULL;
    atomic_store(&g_waited[k], sig);
  }
  return NULL;
}

static int daemon_case(void) {
  sigemptyset(&g_term_set);
  sigaddset(&g_term_set, SIGTERM);
  sigaddset(&g_term_set, SIGINT);
  sigaddset(&g_term_set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &g_term_set, NULL);
  install(SIGUSR1, 0);
  start_readers(-1, 0);
  pthread_t w;
  pthread_create(&w, NULL, waiter, NULL);
  sleep_ms(50);
  const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int k = 0; k < 3; ++k) {
    kill(getpid(), sigs[k]);
    for (int t = 0; t < 2000 && atomic_load(&g_waited[k]) == 0; ++t) sleep_ms(1);
    printf("sigwait thread got %s\n", strsignal(atomic_load(&g_waited[k])));
  }
  pthread_join(w, NULL);
  // A thread-directed signal to worker 3, parked in read: its handler runs there, and only
  // its read ends, with EINTR.
  pthread_kill(g_workers[3], SIGUSR1);
  for (int t = 0; t < 2000 && atomic_load(&g_read_result[3]) == 0; ++t) sleep_ms(1);
  sleep_ms(100);
  check(atomic_load(&g_handled) == 1, "the handler ran once");
  check(atomic_load(&g_handled_by) == 3, "in worker 3 (its thread-locals)");
  check(atomic_load(&g_gettid_ok), "with worker 3's gettid()");
  check(atomic_load(&g_read_result[3]) == 2, "worker 3's read returned EINTR");
  check(count_results(0, 3) == N - 1, "the other readers still read");
  finish_readers();
  check(count_results(1, 3) == N - 1, "and got their data");
  return g_failed;
}

// --- process: only worker 5 accepts SIGUSR1; kill() to the process reaches it ---------------
static int process_case(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  install(SIGUSR1, 0);
  start_readers(5, SIGUSR1);
  kill(getpid(), SIGUSR1);
  for (int t = 0; t < 2000 && atomic_load(&g_read_result[5]) == 0; ++t) sleep_ms(1);
  sleep_ms(100);
  check(atomic_load(&g_handled) == 1, "the handler ran once");
  check(atomic_load(&g_handled_by) == 5, "in worker 5, the one thread that accepts it");
  check(atomic_load(&g_read_result[5]) == 2, "worker 5's read returned EINTR");
  check(count_results(0, 5) == N - 1, "the other readers still read");
  finish_readers();
  return g_failed;
}

// --- directed: every thread accepts SIGUSR1; pthread_kill/tgkill choose the thread -----------
static int directed_case(void) {
  install(SIGUSR1, 0);
  start_readers(-1, 0);
  pthread_kill(g_workers[2], SIGUSR1);
  for (int t = 0; t < 2000 && atomic_load(&g_read_result[2]) == 0; ++t) sleep_ms(1);
  check(atomic_load(&g_handled_by) == 2, "pthread_kill: handled in worker 2");
  check(atomic_load(&g_read_result[2]) == 2, "worker 2's read returned EINTR");
  syscall(SYS_tgkill, getpid(), g_tids[6], SIGUSR1);
  for (int t = 0; t < 2000 && atomic_load(&g_read_result[6]) == 0; ++t) sleep_ms(1);
  check(atomic_load(&g_handled_by) == 6, "tgkill with worker 6's id: handled in worker 6");
  check(atomic_load(&g_read_result[6]) == 2, "worker 6's read returned EINTR");
  sleep_ms(100);
  check(atomic_load(&g_handled) == 2, "two handler runs");
  int others = 0;
  for (int i = 0; i < N; ++i)
    if (i != 2 && i != 6 && atomic_load(&g_read_result[i]) == 0) ++others;
  check(others == N - 2, "the other readers still read");
  finish_readers();
  return g_failed;
}

// --- restart: SA_RESTART: the handler runs in the thread, its read goes on -----------------
static int restart_case(void) {
  install(SIGUSR1, SA_RESTART);
  start_readers(-1, 0);
  pthread_kill(g_workers[4], SIGUSR1);
  for (int t = 0; t < 2000 && atomic_load(&g_handled) == 0; ++t) sleep_ms(1);
  sleep_ms(100);
  check(atomic_load(&g_handled_by) == 4, "handled in worker 4");
  check(count_results(0, -1) == N, "every read still reads (restarted)");
  finish_readers();
  check(count_results(1, -1) == N, "and got its data");
  return g_failed;
}

// --- pending: sent to a thread that blocks it; runs when that thread unblocks it ----------
static atomic_int g_step = 0;
static atomic_int g_pending_seen = 0;
static atomic_int g_handled_before_return = 0;

static void* blocker(void* p) {
  (void)p;
  t_index = 7;
  g_tids[7] = (pid_t)syscall(SYS_gettid);
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  atomic_store(&g_step, 1);
  while (atomic_load(&g_step) != 2) sleep_ms(1);
  sigset_t pend;
  sigpending(&pend);
  atomic_store(&g_pending_seen, sigismember(&pend, SIGUSR1) == 1);
  pthread_sigmask(SIG_UNBLOCK, &s, NULL);
  atomic_store(&g_handled_before_return, atomic_load(&g_handled) == 1 && atomic_load(&g_handled_by) == 7);
  return NULL;
}

static int pending_case(void) {
  install(SIGUSR1, 0);
  pthread_t t;
  pthread_create(&t, NULL, blocker, NULL);
  while (atomic_load(&g_step) != 1) sleep_ms(1);
  pthread_kill(t, SIGUSR1);
  sleep_ms(100);
  check(atomic_load(&g_handled) == 0, "not handled while the thread blocks it");
  sigset_t pend;
  sigpending(&pend);
  check(sigismember(&pend, SIGUSR1) != 1, "not pending for main");
  atomic_store(&g_step, 2);
  pthread_join(t, NULL);
  check(atomic_load(&g_pending_seen), "pending for the thread (sigpending)");
  check(atomic_load(&g_handled_before_return), "handled in it before pthread_sigmask returned");
  return g_failed;
}

// --- self: raise and pthread_kill(pthread_self()) in a thread run before they return ------
static atomic_int g_self_ok = 0;

static void* selfer(void* p) {
  (void)p;
  t_index = 1;
  g_tids[1] = (pid_t)syscall(SYS_gettid);
  raise(SIGUSR1);
  int a = atomic_load(&g_handled) == 1 && atomic_load(&g_handled_by) == 1;
  pthread_kill(pthread_self(), SIGUSR1);
  int b = atomic_load(&g_handled) == 2 && atomic_load(&g_handled_by) == 1;
  atomic_store(&g_self_ok, a * 2 + b);
  return NULL;
}

static int self_case(void) {
  install(SIGUSR1, 0);
  pthread_t t;
  pthread_create(&t, NULL, selfer, NULL);
  pthread_join(t, NULL);
  check(atomic_load(&g_self_ok) & 2, "raise in a thread: handled there before it returned");
  check(atomic_load(&g_self_ok) & 1, "pthread_kill(pthread_self()): the same");
  return g_failed;
}

// --- sigwait-directed: pthread_kill to a thread in sigwait for that signal ----------------
static atomic_int g_sigwait_got = 0;

static void* usr2_waiter(void* p) {
  (void)p;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  int sig = 0;
  atomic_store(&g_step, 1);
  if (sigwait(&s, &sig) == 0) atomic_store(&g_sigwait_got, sig);
  return NULL;
}

static int sigwait_directed_case(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &s, NULL);  // inherited by the thread
  pthread_t t;
  pthread_create(&t, NULL, usr2_waiter, NULL);
  while (atomic_load(&g_step) != 1) sleep_ms(1);
  sleep_ms(50);
  pthread_kill(t, SIGUSR2);
  pthread_join(t, NULL);
  check(atomic_load(&g_sigwait_got) == SIGUSR2, "the thread's sigwait got SIGUSR2");
  sigset_t pend;
  sigpending(&pend);
  check(sigismember(&pend, SIGUSR2) != 1, "nothing left pending for main");
  return g_failed;
}

// --- altstack: each thread's sigaltstack is its own ------------------------------------
static atomic_int g_alt_ok[2];
static pthread_barrier_t g_alt_bar;

static void* alt_thread(void* p) {
  const int i = (int)(long)p;
  stack_t ss = {0}, got = {0};
  ss.ss_size = 1 << 16;
  ss.ss_sp = malloc(ss.ss_size);
  int ok = sigaltstack(&ss, NULL) == 0;
  pthread_barrier_wait(&g_alt_bar);  // both set theirs
  ok &= sigaltstack(NULL, &got) == 0 && got.ss_sp == ss.ss_sp && got.ss_size == ss.ss_size && got.ss_flags == 0;
  pthread_barrier_wait(&g_alt_bar);
  if (i == 0) {  // the first disables and frees its own; the second's stays
    stack_t off = {0};
    off.ss_flags = SS_DISABLE;
    ok &= sigaltstack(&off, NULL) == 0;
    ok &= sigaltstack(NULL, &got) == 0 && (got.ss_flags & SS_DISABLE);
    free(ss.ss_sp);
  }
  pthread_barrier_wait(&g_alt_bar);
  if (i == 1) ok &= sigaltstack(NULL, &got) == 0 && got.ss_sp == ss.ss_sp && got.ss_flags == 0;
  stack_t tiny = {0};
  tiny.ss_sp = ss.ss_sp;
  tiny.ss_size = 16;
  ok &= sigaltstack(&tiny, NULL) == -1 && errno == ENOMEM;
  atomic_store(&g_alt_ok[i], ok);
  pthread_barrier_wait(&g_alt_bar);
  if (i == 1) free(ss.ss_sp);
  return NULL;
}

static int altstack_case(void) {
  stack_t before = {0}, after = {0};
  sigaltstack(NULL, &before);
  pthread_barrier_init(&g_alt_bar, NULL, 2);
  pthread_t t[2];
  for (long i = 0; i < 2; ++i) pthread_create(&t[i], NULL, alt_thread, (void*)i);
  for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
  sigaltstack(NULL, &after);
  check(atomic_load(&g_alt_ok[0]), "thread 0 sees its own stack, then none after disabling it");
  check(atomic_load(&g_alt_ok[1]), "thread 1 keeps its own");
  check(after.ss_sp == before.ss_sp && after.ss_flags == before.ss_flags && after.ss_size == before.ss_size,
        "main's is as it was");
  return g_failed;
}

// --- spawn-mask: a spawned program starts with the mask of the thread that spawned it ----
#include <spawn.h>
#include <sys/wait.h>
extern char** environ;

// The SigBlk line of a child's /proc/self/status, as the child's own cat prints it.
static void child_sigblk(const char* who, int use_p) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char* argv[] = {"grep", "SigBlk", "/proc/self/status", NULL};
  pid_t pid;
  int r = use_p ? posix_spawnp(&pid, "grep", &fa, NULL, argv, environ)
                : posix_spawn(&pid, "/bin/grep", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (r != 0) {
    printf("%s: posix_spawn failed: %s\n", who, strerror(r));
    g_failed = 1;
    close(fds[0]);
    return;
  }
  char buf[256] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  waitpid(pid, NULL, 0);
  if (n > 0 && buf[n - 1] == '\n') buf[n - 1] = 0;
  printf("%s: child's %s\n", who, buf);
}

static void* usr2_blocker(void* p) {
  (void)p;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_SETMASK, &s, NULL);
  child_sigblk("a thread blocking SIGUSR2 only", 1);
  return NULL;
}

static int spawn_mask_case(void) {
  // main blocks SIGUSR1; a reader thread accepts it (so the OS thread may let it through).
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  start_readers(0, SIGUSR1);
  child_sigblk("main blocking SIGUSR1", 0);
  pthread_t t;
  pthread_create(&t, NULL, usr2_blocker, NULL);
  pthread_join(t, NULL);
  finish_readers();
  return g_failed;
}

int main(int argc, char** argv) {
  alarm(30);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* mode = argc > 1 ? argv[1] : "";
  if (!strcmp(mode, "daemon")) return daemon_case();
  if (!strcmp(mode, "process")) return process_case();
  if (!strcmp(mode, "directed")) return directed_case();
  if (!strcmp(mode, "restart")) return restart_case();
  if (!strcmp(mode, "pending")) return pending_case();
  if (!strcmp(mode, "self")) return self_case();
  if (!strcmp(mode, "sigwait-directed")) return sigwait_directed_case();
  if (!strcmp(mode, "altstack")) return altstack_case();
  if (!strcmp(mode, "spawn-mask")) return spawn_mask_case();
  fprintf(stderr, "usage: thread_signals daemon|process|directed|restart|pending|self|sigwait-directed|altstack|spawn-mask\n");
  return 2;
}
