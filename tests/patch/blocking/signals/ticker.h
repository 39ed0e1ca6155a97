/* A ticking thread beside a blocking call (issue 20): 20 ticks of 20 ms. The verdict is by
   ordering only: the ticks ended before the blocking call returned (natively they end at
   ~0.4 s, the call returns after ~1 s); if the call blocked the OS thread under ringlet-run,
   the ticks are held up behind it (or the call never returns, and alarm ends the run). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

static atomic_int ticks_done;

static void* ticker(void* arg) {
  (void)arg;
  for (int i = 0; i < 20; ++i) {
    struct timespec t = {0, 20 * 1000 * 1000};
    nanosleep(&t, NULL);
    atomic_fetch_add(&ticks_done, 1);
  }
  return NULL;
}

/* Helper threads start with every signal blocked, so a signal sent to the process reaches
   the thread under test (natively the kernel may pick any thread that does not block it). */
static void start_quiet(pthread_t* t, void* (*fn)(void*), void* arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static pthread_t start_ticker(void) {
  pthread_t t;
  atomic_store(&ticks_done, 0);
  start_quiet(&t, ticker, NULL);
  return t;
}

/* Called right after the blocking call returned. */
static const char* ticks_verdict(void) {
  return atomic_load(&ticks_done) == 20 ? "ticks not held up" : "TICKS HELD UP";
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
}
