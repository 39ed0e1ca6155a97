/* A thread's name and stack seen from itself at once, and its name set by main, which runs on
 * another carrier under `ringlet-run --threads 2` (issue 21). A new thread may start on its
 * carrier before pthread_create has returned in its creator: pthread_setname_np,
 * pthread_getname_np and pthread_getattr_np on pthread_self() must already act on it; and
 * pthread_setname_np from main must reach a thread of another carrier (it was ignored there).
 * Three threads in turn, each checked natively and patched alike. A thread stays on its
 * creator's carrier unless another has two fewer live threads: a first thread that waits for
 * the end (the anchor) keeps main's carrier, so the named ones go to the other (each says it
 * runs on another OS thread than main's). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t gate;
static int anchor_pipe[2];
static long main_tid;

/* The kernel's id of the OS thread running the caller (the carrier of a fiber thread under
 * ringlet-run: gettid() is virtual there), from /proc/thread-self -> "PID/task/TID". */
static long os_tid(void) {
  char link[64] = {0};
  const ssize_t n = readlink("/proc/thread-self", link, sizeof link - 1);
  if (n <= 0) return -1;
  const char* slash = strrchr(link, '/');
  return slash ? atol(slash + 1) : -1;
}

static void* anchor(void* arg) {
  char c;
  (void)arg;
  (void)!read(anchor_pipe[0], &c, 1); /* until main is done */
  return NULL;
}

static void* body(void* arg) {
  char n[16];
  pthread_setname_np(pthread_self(), (const char*)arg);
  pthread_getname_np(pthread_self(), n, sizeof n);
  pthread_attr_t at;
  void* lo = NULL;
  size_t size = 0;
  pthread_getattr_np(pthread_self(), &at);
  pthread_attr_getstack(&at, &lo, &size);
  pthread_attr_destroy(&at);
  const char* sp = (const char*)__builtin_frame_address(0);
  const int in_stack = sp >= (const char*)lo && sp < (const char*)lo + size;
  printf("%s: named itself at once: %s; its stack holds its frame: %s; on another OS thread than main's: %s\n",
         (const char*)arg, strcmp(n, (const char*)arg) == 0 ? "yes" : "no", in_stack ? "yes" : "no",
         os_tid() != main_tid ? "yes" : "no");
  pthread_barrier_wait(&gate); /* main renames it */
  pthread_barrier_wait(&gate);
  pthread_getname_np(pthread_self(), n, sizeof n);
  printf("%s: main's name for it reached it: %s\n", (const char*)arg, strncmp(n, "renamed-", 8) == 0 ? "yes" : "no");
  return NULL;
}

int main(void) {
  alarm(30);
  setvbuf(stdout, NULL, _IOLBF, 0);
  pthread_barrier_init(&gate, NULL, 2);
  main_tid = os_tid();
  pthread_t a;
  if (pipe(anchor_pipe) != 0 || pthread_create(&a, NULL, anchor, NULL) != 0) return 1;
  static const char* names[] = {"first", "second", "third"};
  for (int i = 0; i < 3; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, body, (void*)names[i]) != 0) return 1;
    pthread_barrier_wait(&gate);
    char want[16], got[16];
    snprintf(want, sizeof want, "renamed-%d", i);
    pthread_setname_np(t, want);
    pthread_getname_np(t, got, sizeof got);
    printf("main: pthread_getname_np after its pthread_setname_np: %s\n", strcmp(got, want) == 0 ? "same" : "DIFFERENT");
    pthread_barrier_wait(&gate);
    pthread_join(t, NULL);
  }
  (void)!write(anchor_pipe[1], "x", 1);
  pthread_join(a, NULL);
  return 0;
}
