// A thread whose stack cannot be mapped (a stack size larger than the address space): natively
// pthread_create fails with EAGAIN. Under `ringlet-run --threads 2` it goes to carrier 1, whose
// pool maps its stack: a thread stays on its creator's carrier unless another has two fewer
// live threads, so a first thread that waits for the end (the anchor) keeps main's carrier 0
// and makes that so. Before the creator waited for the other carrier's answer, pthread_create
// answered 0, the thread never ran, and its join never returned. Then ordinary threads on the
// same carrier, which must run (on another OS thread than main's: under ringlet-run, carrier 1)
// and be joined.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int anchor_pipe[2];
static long ran_on;

// The kernel's id of the OS thread running the caller (the carrier of a fiber thread under
// ringlet-run: gettid() is virtual there), from /proc/thread-self -> "PID/task/TID".
static long os_tid(void) {
  char link[64] = {0};
  const ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
  if (n <= 0) return -1;
  const char* slash = strrchr(link, '/');
  return slash ? atol(slash + 1) : -1;
}

static void* body(void* arg) {
  ran_on = os_tid();
  return arg;
}

static void* anchor(void* arg) {
  char c;
  (void)arg;
  (void)!read(anchor_pipe[0], &c, 1);  // until main is done
  return NULL;
}

int main(void) {
  alarm(20);  // a join that never returns: killed, not a hang
  pthread_t a;
  if (pipe(anchor_pipe) != 0 || pthread_create(&a, NULL, anchor, NULL) != 0) return 1;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, (size_t)1 << 47);
  pthread_t t;
  int e = pthread_create(&t, &at, body, (void*)(intptr_t)7);
  printf("a thread with a 128 TiB stack: %s\n", e == 0 ? "created" : strerror(e));
  fflush(stdout);
  if (e == 0) {
    void* r = NULL;
    pthread_join(t, &r);
    printf("  joined, %ld\n", (long)(intptr_t)r);
  }
  for (int i = 0; i < 3; ++i) {
    void* r = NULL;
    e = pthread_create(&t, NULL, body, (void*)(intptr_t)(40 + i));
    if (e == 0) e = pthread_join(t, &r);
    printf("an ordinary thread: %s, returned %ld, on another OS thread than main's: %s\n",
           e == 0 ? "ran" : strerror(e), (long)(intptr_t)r, e == 0 && ran_on != os_tid() ? "yes" : "NO");
  }
  (void)!write(anchor_pipe[1], "x", 1);
  pthread_join(a, NULL);
  return 0;
}
