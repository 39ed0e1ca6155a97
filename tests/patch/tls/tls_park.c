/* Thread-locals across parks: 64 threads, each with its own __thread scalars and arrays.
 *
 * Every new thread first checks that it sees the image's initial values (not its creator's),
 * then sets its own, and after every kind of park re-checks them (values and addresses):
 * usleep, nanosleep, a socketpair read that blocks (threads paired, ping-pong), mutex
 * contention, pthread_cond_wait, sem_wait, pthread_join of a child thread (which checks the
 * initial values in turn), a raw syscall(SYS_futex, FUTEX_WAIT...) woken by the partner,
 * sched_yield, poll on an empty pipe with a timeout, getaddrinfo("localhost").
 * Also: the addresses of the variables are distinct across all live threads (collected while
 * all are alive, behind a barrier), and a thread writing through a pointer to its partner's
 * __thread variable while the partner is parked is seen by the partner (and not by itself).
 *
 * Natively every check passes. Run under ringlet-run, the output must be identical; a failed
 * check prints what was seen ("tls_park: thread 7 saw id 12 after usleep") and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 64 /* even: the threads are paired (i, i+1) */
#define ARR 512
#define TAB 16
#define CROSS_INIT 7
#define CROSS_MAGIC 0x5eed00

__thread int id;
__thread char arr[ARR];
__thread long init = 12345;
__thread int tab[TAB] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
__thread int cross = CROSS_INIT;

static const int tab_image[TAB] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};

/* ---- failure reports: all are counted; at most two per kind of check are printed ---- */
static pthread_mutex_t report_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int n_fail_values, n_fail_cross, n_fail_ops;
#define MAX_KINDS 64
static const char* kinds[MAX_KINDS];
static int kind_printed[MAX_KINDS];

static void report(atomic_int* counter, const char* kind, const char* fmt, ...) {
  atomic_fetch_add(counter, 1);
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&report_mu);
  int k = 0;
  while (k < MAX_KINDS - 1 && kinds[k] && strcmp(kinds[k], kind) != 0) ++k;
  kinds[k] = kind;
  if (kind_printed[k]++ < 2) {
    printf("tls_park: %s\n", line);
    fflush(stdout);
  }
  pthread_mutex_unlock(&report_mu);
}

/* ---- the values ---- */
/* 0 if this thread sees the image's initial values; else reports the first difference. */
static int check_initial(const char* who, int n) {
  char what[64] = "";
  if (id != 0)
    snprintf(what, sizeof what, "id %d", id);
  else if (init != 12345)
    snprintf(what, sizeof what, "init %ld", init);
  else if (cross != CROSS_INIT)
    snprintf(what, sizeof what, "cross %d", cross);
  for (int k = 0; !what[0] && k < ARR; ++k)
    if (arr[k] != 0) snprintf(what, sizeof what, "arr[%d] %d", k, arr[k]);
  for (int k = 0; !what[0] && k < TAB; ++k)
    if (tab[k] != tab_image[k]) snprintf(what, sizeof what, "tab[%d] %d", k, tab[k]);
  if (!what[0]) return 0;
  report(&n_fail_values, who, "%s %d saw %s at its start instead of the initial value", who, n,
         what);
  return -1;
}

static void set_own(int n) {
  id = n;
  for (int k = 0; k < ARR; ++k) arr[k] = (char)(n * 7 + k);
  init = 1000000 + n;
  for (int k = 0; k < TAB; ++k) tab[k] = n * 100 + k;
}

/* The addresses each thread saw at its start (index NT: main). */
static void* addr_id[NT + 1];
static void* addr_arr[NT + 1];
static void* addr_init[NT + 1];
static void* addr_tab[NT + 1];
static void* addr_cross[NT + 1];

static void record_addresses(int i) {
  addr_id[i] = &id;
  addr_arr[i] = arr;
  addr_init[i] = &init;
  addr_tab[i] = tab;
  addr_cross[i] = &cross;
}

/* Thread n (index i) re-checks its own values after a park called `after`. */
static int check_own(int i, int n, const char* after) {
  char what[64] = "";
  if (id != n)
    snprintf(what, sizeof what, "id %d", id);
  else if (init != 1000000 + n)
    snprintf(what, sizeof what, "init %ld", init);
  else if ((void*)&id != addr_id[i])
    snprintf(what, sizeof what, "a new address of id");
  else if ((void*)arr != addr_arr[i])
    snprintf(what, sizeof what, "a new address of arr");
  for (int k = 0; !what[0] && k < ARR; ++k)
    if (arr[k] != (char)(n * 7 + k)) snprintf(what, sizeof what, "arr[%d] %d", k, arr[k]);
  for (int k = 0; !what[0] && k < TAB; ++k)
    if (tab[k] != n * 100 + k) snprintf(what, sizeof what, "tab[%d] %d", k, tab[k]);
  if (!what[0]) return 0;
  if (i == NT)
    report(&n_fail_values, after, "main saw %s after %s", what, after);
  else
    report(&n_fail_values, after, "thread %d saw %s after %s", n, what, after);
  return -1;
}

/* ---- shared state ---- */
static pthread_barrier_t bar;
static pthread_mutex_t contended = PTHREAD_MUTEX_INITIALIZER;
static int sp[NT / 2][2]; /* one socketpair per pair of threads */

struct slot {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int flag;
  sem_t sem;
  atomic_int fw;  /* futex word */
  int* cross_ptr; /* the even thread of a pair publishes &cross here */
};
static struct slot slots[NT];

static void cond_post(int j) {
  pthread_mutex_lock(&slots[j].mu);
  slots[j].flag = 1;
  pthread_cond_signal(&slots[j].cv);
  pthread_mutex_unlock(&slots[j].mu);
}
static void cond_wait_own(int i) {
  pthread_mutex_lock(&slots[i].mu);
  while (!slots[i].flag) pthread_cond_wait(&slots[i].cv, &slots[i].mu); /* alarm bounds it */
  slots[i].flag = 0;
  pthread_mutex_unlock(&slots[i].mu);
}

/* A slot's futex is private for even slots and shared for odd ones (waker and waiter agree). */
static int futex_op(int j, int op) { return op | ((j & 1) ? 0 : FUTEX_PRIVATE_FLAG); }
static void futex_post(int j) {
  atomic_store(&slots[j].fw, 1);
  syscall(SYS_futex, &slots[j].fw, futex_op(j, FUTEX_WAKE), 1, NULL, NULL, 0);
}
static void futex_wait_own(int i, int n) {
  for (int rounds = 0; atomic_load(&slots[i].fw) == 0; ++rounds) {
    if (rounds == 20) {
      report(&n_fail_ops, "futex", "thread %d: futex wait not woken within 20 s", n);
      break;
    }
    struct timespec to = {1, 0};
    long r = syscall(SYS_futex, &slots[i].fw, futex_op(i, FUTEX_WAIT), 0, &to, NULL, 0);
    if (r != 0 && errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR) {
      report(&n_fail_ops, "futex", "thread %d: futex wait failed: %s", n, strerror(errno));
      break;
    }
  }
  atomic_store(&slots[i].fw, 0);
}

static void write_all(int fd, const char* p, size_t len, int n) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w <= 0) {
      report(&n_fail_ops, "socketpair", "thread %d: socketpair write failed: %s", n,
             strerror(errno));
      return;
    }
    p += w, len -= (size_t)w;
  }
}
static void read_msg(int fd, int from, int n) {
  char msg[64], want[64];
  size_t got = 0;
  while (got < sizeof msg) {
    ssize_t r = read(fd, msg + got, sizeof msg - got);
    if (r <= 0) {
      report(&n_fail_ops, "socketpair", "thread %d: socketpair read failed: %s", n,
             r ? strerror(errno) : "EOF");
      return;
    }
    got += (size_t)r;
  }
  memset(want, 0, sizeof want);
  snprintf(want, sizeof want, "message from thread %d", from);
  if (memcmp(msg, want, sizeof msg) != 0)
    report(&n_fail_ops, "socketpair", "thread %d: socketpair read got '%.40s'", n, msg);
}
static void send_msg(int fd, int n) {
  char msg[64];
  memset(msg, 0, sizeof msg);
  snprintf(msg, sizeof msg, "message from thread %d", n);
  write_all(fd, msg, sizeof msg, n);
}

static void* child(void* arg) {
  int parent = (int)(intptr_t)arg;
  int n = 1000 + parent;
  if (check_initial("the child of thread", parent) == 0) {
    set_own(n);
    usleep(500);
    /* a child's addresses are not recorded: compare with what it sees now */
    if (id != n || init != 1000000 + n || arr[5] != (char)(n * 7 + 5) || tab[3] != n * 100 + 3)
      report(&n_fail_values, "child", "the child of thread %d saw id %d after usleep", parent, id);
  }
  return NULL;
}

static atomic_int n_lookup_errors;

static void* worker(void* arg) {
  int i = (int)(intptr_t)arg, n = i + 1, even = !(i & 1);
  check_initial("thread", n);
  set_own(n);
  record_addresses(i);
  pthread_barrier_wait(&bar); /* all alive: the addresses are complete */
  check_own(i, n, "the first barrier");

  /* 1 */
  usleep(1000 + (unsigned)(i % 7) * 100);
  check_own(i, n, "usleep");

  /* 2 */
  struct timespec ts = {0, 500000 + (i % 5) * 100000};
  nanosleep(&ts, NULL);
  check_own(i, n, "nanosleep");

  /* 3: the even thread writes after 2 ms, so the odd one's read blocks; then the reverse */
  int fd = sp[i / 2][even ? 0 : 1];
  if (even) {
    usleep(2000);
    send_msg(fd, n);
    read_msg(fd, n + 1, n);
  } else {
    read_msg(fd, n - 1, n);
    usleep(2000);
    send_msg(fd, n);
  }
  check_own(i, n, "a socketpair read");

  /* 4: everyone at once on one mutex held across a sleep */
  pthread_barrier_wait(&bar);
  pthread_mutex_lock(&contended);
  usleep(200);
  pthread_mutex_unlock(&contended);
  check_own(i, n, "mutex contention");

  /* 5, 6, 8: the even thread waits first, the odd one wakes it after a sleep and then waits
   * until the even one, after a sleep of its own, wakes it. */
  if (even) {
    cond_wait_own(i);
    check_own(i, n, "pthread_cond_wait");
    usleep(500);
    cond_post(i + 1);
  } else {
    usleep(1000);
    cond_post(i - 1);
    cond_wait_own(i);
    check_own(i, n, "pthread_cond_wait");
  }
  if (even) {
    sem_wait(&slots[i].sem);
    check_own(i, n, "sem_wait");
    usleep(500);
    sem_post(&slots[i + 1].sem);
  } else {
    usleep(1000);
    sem_post(&slots[i - 1].sem);
    sem_wait(&slots[i].sem);
    check_own(i, n, "sem_wait");
  }

  /* 7 */
  pthread_t c;
  int rc = pthread_create(&c, NULL, child, (void*)(intptr_t)n);
  if (rc != 0)
    report(&n_fail_ops, "pthread_create", "thread %d: pthread_create: %s", n, strerror(rc));
  else
    pthread_join(c, NULL);
  check_own(i, n, "pthread_join");

  if (even) {
    futex_wait_own(i, n);
    check_own(i, n, "a futex wait");
    usleep(500);
    futex_post(i + 1);
  } else {
    usleep(1000);
    futex_post(i - 1);
    futex_wait_own(i, n);
    check_own(i, n, "a futex wait");
  }

  /* 9 */
  for (int k = 0; k < 3; ++k) {
    sched_yield();
    check_own(i, n, "sched_yield");
  }

  /* 10 */
  int p[2];
  if (pipe(p) != 0) {
    report(&n_fail_ops, "pipe", "thread %d: pipe: %s", n, strerror(errno));
  } else {
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    int r = poll(&pfd, 1, 5);
    if (r != 0) report(&n_fail_ops, "poll", "thread %d: poll on an empty pipe returned %d", n, r);
    close(p[0]);
    close(p[1]);
  }
  check_own(i, n, "poll");

  /* 11 (a failed lookup is only noted on stderr: the park is what matters) */
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  rc = getaddrinfo("localhost", "80", &hints, &res);
  if (rc == 0)
    freeaddrinfo(res);
  else
    atomic_fetch_add(&n_lookup_errors, 1);
  check_own(i, n, "getaddrinfo");

  /* The cross-thread write: the even thread publishes &cross and parks; the odd one writes
   * through the pointer, then wakes it. */
  pthread_barrier_wait(&bar);
  if (even) {
    slots[i].cross_ptr = &cross;
    sem_post(&slots[i + 1].sem);
    sem_wait(&slots[i].sem);
    if (cross != CROSS_MAGIC + n)
      report(&n_fail_cross, "cross-even", "thread %d saw cross %d after its partner wrote %d to it",
             n, cross, CROSS_MAGIC + n);
  } else {
    sem_wait(&slots[i].sem);
    usleep(1000);
    *slots[i - 1].cross_ptr = CROSS_MAGIC + n - 1;
    sem_post(&slots[i - 1].sem);
    if (cross != CROSS_INIT)
      report(&n_fail_cross, "cross-odd",
             "thread %d saw its own cross %d after writing to its partner's", n, cross);
  }
  pthread_barrier_wait(&bar);
  check_own(i, n, "the last barrier");
  return NULL;
}

static int distinct(void* const* a, int count) {
  for (int x = 0; x < count; ++x)
    for (int y = x + 1; y < count; ++y)
      if (a[x] == a[y]) return 0;
  return 1;
}

int main(void) {
  alarm(60);
  check_initial("main", 0);
  set_own(NT + 1); /* main's own values: the threads must not start with them */
  record_addresses(NT);

  pthread_barrier_init(&bar, NULL, NT);
  for (int p = 0; p < NT / 2; ++p)
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp[p]) != 0) {
      perror("socketpair");
      return 1;
    }
  for (int i = 0; i < NT; ++i) {
    pthread_mutex_init(&slots[i].mu, NULL);
    pthread_cond_init(&slots[i].cv, NULL);
    sem_init(&slots[i].sem, 0, 0);
  }
  pthread_t t[NT];
  for (int i = 0; i < NT; ++i) {
    int rc = pthread_create(&t[i], NULL, worker, (void*)(intptr_t)i);
    if (rc != 0) {
      printf("tls_park: pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  for (int i = 0; i < NT; ++i) pthread_join(t[i], NULL);
  check_own(NT, NT + 1, "joining every thread");
  if (n_lookup_errors)
    fprintf(stderr, "tls_park: note: %d lookups of localhost failed\n", n_lookup_errors);

  int ok = 1;
  if (n_fail_values == 0 && n_fail_ops == 0) {
    printf("tls_park: %d threads, 11 kinds of park, values kept\n", NT);
  } else {
    printf("tls_park: FAILED: %d value checks and %d operations failed\n", (int)n_fail_values,
           (int)n_fail_ops);
    ok = 0;
  }
  if (distinct(addr_id, NT + 1) && distinct(addr_arr, NT + 1) && distinct(addr_init, NT + 1) &&
      distinct(addr_tab, NT + 1) && distinct(addr_cross, NT + 1)) {
    printf("tls_park: addresses distinct\n");
  } else {
    printf(
        "tls_park: FAILED: two live threads (or a thread and main) share the address of a "
        "__thread variable (&id: %s)\n",
        distinct(addr_id, NT + 1) ? "distinct" : "shared");
    ok = 0;
  }
  if (n_fail_cross == 0) {
    printf("tls_park: cross-thread write seen\n");
  } else {
    printf("tls_park: FAILED: %d cross-thread write checks\n", (int)n_fail_cross);
    ok = 0;
  }
  return ok ? 0 : 1;
}
