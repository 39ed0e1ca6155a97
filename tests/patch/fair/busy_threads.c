// Threads that never wait, beside one that sleeps. Each busy thread ping-pongs a byte
// through a socket pair of its own: every write and read completes at once, so it never
// blocks. A native program gets them time-sliced by the kernel; under ringlet-run a thread
// is a fiber and is never preempted, so the first busy thread would keep its carrier for
// ever (the sleeper's timer never fires, the other busy threads never start) unless the
// patch gives way after a slice. Prints the same verdicts natively and patched.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kBusy = 3 };
static atomic_int stop;
static atomic_int started;

static void* busy(void* arg) {
  long* trips = arg;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    exit(1);
  }
  atomic_fetch_add(&started, 1);
  char c = 'x';
  while (!atomic_load(&stop)) {
    if (write(sv[0], &c, 1) != 1 || read(sv[1], &c, 1) != 1) {
      perror("busy thread");
      exit(1);
    }
    ++*trips;
  }
  close(sv[0]);
  close(sv[1]);
  return NULL;
}

static void* sleeper(void* arg) {
  (void)arg;
  // Until every busy thread runs, then 100 ms more: sleeps, which need the carrier back.
  while (atomic_load(&started) < kBusy) usleep(1000);
  usleep(100 * 1000);
  atomic_store(&stop, 1);
  return NULL;
}

int main(void) {
  alarm(20);  // a thread that never gets its carrier back: killed, not a hang
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t b[kBusy], s;
  long trips[kBusy] = {0};
  for (int i = 0; i < kBusy; ++i)
    if (pthread_create(&b[i], NULL, busy, &trips[i]) != 0) return 1;
  if (pthread_create(&s, NULL, sleeper, NULL) != 0) return 1;
  pthread_join(s, NULL);
  for (int i = 0; i < kBusy; ++i) pthread_join(b[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  int all = 1;
  for (int i = 0; i < kBusy; ++i) all &= trips[i] > 0;
  printf("the sleeper woke and stopped %d busy threads: yes\n", kBusy);
  printf("every busy thread made round trips: %s\n", all ? "yes" : "no");
  printf("done within 5 s: %s\n", secs < 5 ? "yes" : "no");
  return all && secs < 5 ? 0 : 1;
}
