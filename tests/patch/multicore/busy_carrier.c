// pthread_create while the carrier it would go to is held by a thread that computes without a
// call. Under `ringlet-run --threads 2`: main holds carrier 0; A (main's first thread, to the
// carrier with the fewest: 1) computes; B (a tie: the lowest-numbered, 0) waits on a pipe; C
// is then placed on carrier 1, whose loop cannot answer while A computes. Natively
// pthread_create returns at once; before the creator's wait was bounded it returned only when A
// stopped (here: after A's 3 s bound, which main meant to end by the stop flag once C had run).
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static atomic_int a_started, stop, c_ran;
static int pipefd[2];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void* compute(void* arg) {
  (void)arg;
  atomic_store(&a_started, 1);
  double end = now_s() + 3.0;
  volatile unsigned long x = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed) && now_s() < end)
    for (int i = 0; i < 1000; ++i) x += (unsigned long)i * 7u;
  return NULL;
}

static void* wait_pipe(void* arg) {
  (void)arg;
  char c;
  return (void*)(long)read(pipefd[0], &c, 1);
}

static void* quick(void* arg) {
  (void)arg;
  atomic_store(&c_ran, 1);
  return NULL;
}

int main(void) {
  alarm(30);
  if (pipe(pipefd) != 0) return 1;
  pthread_t a, b, c;
  if (pthread_create(&a, NULL, compute, NULL) != 0) return 1;
  while (!atomic_load(&a_started)) usleep(1000);
  if (pthread_create(&b, NULL, wait_pipe, NULL) != 0) return 1;
  usleep(20000);  // B is parked in its read
  double t0 = now_s();
  int e = pthread_create(&c, NULL, quick, NULL);
  double took = now_s() - t0;
  printf("pthread_create while another thread computes: %s, returned within 500 ms: %s\n",
         e == 0 ? "created" : "failed", took < 0.5 ? "yes" : "no");
  fflush(stdout);
  if (e == 0) pthread_join(c, NULL);
  printf("the new thread ran before the computing one stopped: %s\n", atomic_load(&c_ran) ? "yes" : "no");
  atomic_store(&stop, 1);
  pthread_join(a, NULL);
  if (write(pipefd[1], "x", 1) != 1) return 1;
  void* r = NULL;
  pthread_join(b, &r);
  printf("the waiting thread read %ld byte\n", (long)r);
  return 0;
}
