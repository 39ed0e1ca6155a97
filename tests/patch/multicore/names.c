/* A thread's name and stack seen from itself at once, and its name set by main, which runs on
 * another carrier under `ringlet-run --threads 2` (issue 21). A new thread may start on its
 * carrier before pthread_create has returned in its creator: pthread_setname_np,
 * pthread_getname_np and pthread_getattr_np on pthread_self() must already act on it; and
 * pthread_setname_np from main must reach a thread of another carrier (it was ignored there).
 * Three threads in turn, each checked natively and patched alike: the first goes to carrier 1
 * (main's first thread goes to the carrier with the fewest), the next two to main's own (each
 * is made after the one before ended), so both cases are seen. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_barrier_t gate;

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
  printf("%s: named itself at once: %s; its stack holds its frame: %s\n", (const char*)arg,
         strcmp(n, (const char*)arg) == 0 ? "yes" : "no", in_stack ? "yes" : "no");
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
  return 0;
}
