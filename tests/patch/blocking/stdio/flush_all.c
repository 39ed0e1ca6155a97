// fflush(NULL) from one thread while other threads' writes to pipe FILEs wait for slow
// readers (X's reads 4 KiB a millisecond after 100 ms, Y's starts after 150 ms): natively each byte reaches its reader once (glibc's fflush(NULL) takes every
// FILE's lock in turn). Two FILEs: while the flush-all waits for Y (its writer parked on a
// pipe nobody reads for 150 ms), X's writer parks inside X's flush; a flush-all that then
// wrote X's buffer itself would send it twice.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { kChunk = 20000, kRounds = 30, kBig = 200000 };
static FILE* g_x;
static FILE* g_y;
static volatile int g_writing = 2;

static void* writer_x(void* arg) {
  (void)arg;
  static char chunk[kChunk];
  for (int r = 0; r < kRounds; ++r) {
    memset(chunk, 'a' + r % 26, sizeof chunk - 1);
    chunk[sizeof chunk - 1] = '\n';
    fwrite(chunk, 1, sizeof chunk, g_x);
    fflush(g_x);
  }
  fclose(g_x);
  __sync_fetch_and_sub(&g_writing, 1);
  return NULL;
}

static void* writer_y(void* arg) {
  (void)arg;
  static char big[kBig];
  memset(big, 'y', sizeof big);
  fwrite(big, 1, sizeof big, g_y);
  fflush(g_y);
  fclose(g_y);
  __sync_fetch_and_sub(&g_writing, 1);
  return NULL;
}

static void* flusher(void* arg) {
  (void)arg;
  while (g_writing) {
    fflush(NULL);
    usleep(200);
  }
  return NULL;
}

struct reader {
  int fd;
  int delay_ms;
  int pause_us;  // after each read
  char fixed;  // 0: lines of 'a'.., else every byte this
  long total, bad;
};

static void* reader(void* arg) {
  struct reader* r = arg;
  usleep(r->delay_ms * 1000);
  char buf[4096];
  long lines = 0;
  int col = 0;
  ssize_t n;
  while ((n = read(r->fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; ++i) {
      if (r->fixed) {
        if (buf[i] != r->fixed) ++r->bad;
      } else if (buf[i] == '\n') {
        if (col != kChunk - 1) ++r->bad;
        ++lines;
        col = 0;
      } else {
        if (buf[i] != 'a' + lines % 26) ++r->bad;
        ++col;
      }
    }
    r->total += n;
    usleep(r->pause_us);
  }
  return NULL;
}

int main(void) {
  alarm(60);
  int px[2], py[2];
  if (pipe(py) || pipe(px)) return 2;
  g_y = fdopen(py[1], "w");
  g_x = fdopen(px[1], "w");  // made last: fflush(NULL) reaches it first
  setvbuf(g_x, NULL, _IOFBF, 65536);
  // X's reader is slow throughout, so X's writer is mostly parked inside its flush.
  struct reader rx = {px[0], 100, 1000, 0, 0, 0}, ry = {py[0], 150, 0, 'y', 0, 0};
  pthread_t t[5];
  pthread_create(&t[0], NULL, reader, &ry);
  pthread_create(&t[1], NULL, reader, &rx);
  pthread_create(&t[2], NULL, writer_y, NULL);
  usleep(20 * 1000);  // Y's writer is parked on its full pipe
  pthread_create(&t[3], NULL, writer_x, NULL);
  pthread_create(&t[4], NULL, flusher, NULL);
  for (int i = 0; i < 5; ++i) pthread_join(t[i], NULL);
  printf("X: bytes read %ld of %d, out of place %ld\n", rx.total, kChunk * kRounds, rx.bad);
  printf("Y: bytes read %ld of %d, out of place %ld\n", ry.total, kBig, ry.bad);
  return rx.total == kChunk * kRounds && rx.bad == 0 && ry.total == kBig && ry.bad == 0 ? 0 : 1;
}
