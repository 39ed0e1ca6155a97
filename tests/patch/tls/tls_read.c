/* Reads that park, into thread-local buffers.
 *
 * Two reader threads each read() from their own pipe, empty at first, into their own
 * `__thread char buf[4096]`; two writer threads fill the pipes with distinct patterns after a
 * delay (so both reads are pending at once: on io_uring the kernel writes into the buffer
 * whose address the read was given) and close them. Each reader reads until its pattern's
 * length, then to EOF, waits at a barrier until the other reader has read too, and then must
 * find exactly its own pattern in its own buffer and zeros after it (nothing of the other's).
 * A reader also checks that its buffer was all zeros when it started (a new thread's
 * thread-locals are the image's). Three rounds, new threads each time: writer 0 first,
 * writer 1 first, both together.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF 4096
__thread char buf[BUF];

static const int len_of[2] = {3000, 2000};
/* reader 0's bytes are in 'a'..'m', reader 1's in 'N'..'Z' */
static char pattern_byte(int k, int j) { return (char)((k ? 'N' : 'a') + (j * 5 + j / 13) % 13); }

static char patterns[2][BUF];
static int fds[2][2];
static int delay_us[2];
static pthread_barrier_t readers_done;
static int failures, round_no;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char* fmt, int a, int b, int c) {
  pthread_mutex_lock(&mu);
  if (failures++ < 12) {
    printf("tls_read: round %d: ", round_no);
    printf(fmt, a, b, c);
    printf("\n");
    fflush(stdout);
  }
  pthread_mutex_unlock(&mu);
}

static const char* whose(char c) {
  if (c == 0) return "zero";
  if (c >= 'a' && c <= 'm') return "reader 0's";
  if (c >= 'N' && c <= 'Z') return "reader 1's";
  return "foreign";
}

static void check_buffer(int k, const char* when) {
  int len = len_of[k];
  for (int j = 0; j < BUF; ++j) {
    char want = j < len ? pattern_byte(k, j) : 0;
    if (buf[j] != want) {
      pthread_mutex_lock(&mu);
      if (failures++ < 12) {
        printf("tls_read: round %d: reader %d found a %s byte at offset %d of its buffer %s\n",
               round_no, k, whose(buf[j]), j, when);
        fflush(stdout);
      }
      pthread_mutex_unlock(&mu);
      return;
    }
  }
}

static void* reader(void* arg) {
  int k = (int)(long)arg, len = len_of[k], got = 0;
  for (int j = 0; j < BUF; ++j)
    if (buf[j] != 0) {
      fail("reader %d's new buffer had a non-zero byte at offset %d (%d)", k, j, buf[j]);
      break;
    }
  while (got < len) {
    ssize_t n = read(fds[k][0], buf + got, (size_t)(BUF - got));
    if (n <= 0) {
      fail("reader %d: read returned %d (errno %d)", k, (int)n, n ? errno : 0);
      break;
    }
    got += (int)n;
  }
  ssize_t n = read(fds[k][0], buf + got, (size_t)(BUF - got));
  if (n != 0) fail("reader %d: %d bytes past its %d, or no EOF", k, (int)n, len);
  pthread_barrier_wait(&readers_done); /* the other reader has read too */
  check_buffer(k, "after both reads");
  usleep(1000);
  check_buffer(k, "after usleep");
  return NULL;
}

static void* writer(void* arg) {
  int k = (int)(long)arg;
  usleep((useconds_t)delay_us[k]);
  const char* p = patterns[k];
  int left = len_of[k];
  while (left > 0) {
    ssize_t w = write(fds[k][1], p, (size_t)left);
    if (w <= 0) {
      fail("writer %d: write returned %d (errno %d)", k, (int)w, errno);
      break;
    }
    p += w, left -= (int)w;
  }
  close(fds[k][1]);
  return NULL;
}

int main(void) {
  alarm(60);
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < len_of[k]; ++j) patterns[k][j] = pattern_byte(k, j);
  static const int delays[3][2] = {{20000, 40000}, {40000, 20000}, {20000, 20000}};
  for (round_no = 1; round_no <= 3; ++round_no) {
    delay_us[0] = delays[round_no - 1][0];
    delay_us[1] = delays[round_no - 1][1];
    pthread_barrier_init(&readers_done, NULL, 2);
    for (int k = 0; k < 2; ++k)
      if (pipe(fds[k]) != 0) {
        perror("pipe");
        return 1;
      }
    pthread_t r[2], w[2];
    for (int k = 0; k < 2; ++k)
      if (pthread_create(&r[k], NULL, reader, (void*)(long)k) != 0) return 1;
    for (int k = 0; k < 2; ++k)
      if (pthread_create(&w[k], NULL, writer, (void*)(long)k) != 0) return 1;
    for (int k = 0; k < 2; ++k) pthread_join(w[k], NULL), pthread_join(r[k], NULL);
    for (int k = 0; k < 2; ++k) close(fds[k][0]);
    pthread_barrier_destroy(&readers_done);
  }
  if (failures) {
    printf("tls_read: FAILED: %d checks\n", failures);
    return 1;
  }
  printf("tls_read: 3 rounds, each reader found its own pattern in its own buffer, nothing else\n");
  return 0;
}
