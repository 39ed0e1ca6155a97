// A thread whose stack cannot be mapped (a stack size larger than the address space): natively
// pthread_create fails with EAGAIN. Under `ringlet-run --threads 2` main's first thread goes to
// carrier 1 (main holds carrier 0; a creator's first thread goes to the carrier with the
// fewest), whose pool maps its stack: before the creator waited for that carrier's answer,
// pthread_create answered 0, the thread never ran, and its join never returned. Then an
// ordinary thread on the same carrier (main's first that was made), which must run and be
// joined, and two more (each made after the last ended: on main's carrier).
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void* body(void* arg) { return arg; }

int main(void) {
  alarm(20);  // a join that never returns: killed, not a hang
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
    printf("an ordinary thread: %s, returned %ld\n", e == 0 ? "ran" : strerror(e), (long)(intptr_t)r);
  }
  return 0;
}
