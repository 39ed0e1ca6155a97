// The rest of stdio on FILEs over pipes, as natively: fileno, ftell/fseek (ESPIPE),
// setvbuf (unbuffered, line-buffered), ungetc, getc/putc macros (the _unlocked forms),
// fscanf, freopen onto a regular file and back, fflush(NULL). On a fiber thread too.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char* en(int e) {
  const char* n = strerrorname_np(e);
  return e == 0 ? "0" : n ? n : "?";
}

// What is readable on fd right now (non-blocking), as a string.
static const char* pending(int fd) {
  static char buf[256];
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  fcntl(fd, F_SETFL, fl);
  buf[n > 0 ? n : 0] = 0;
  for (char* p = buf; *p; ++p)
    if (*p == '\n') *p = '|';
  return buf;
}

static void* run(void* arg) {
  const char* who = arg;
  int p[2];
  if (pipe(p)) return NULL;
  FILE* w = fdopen(p[1], "w");
  FILE* r = fdopen(p[0], "r");
  printf("[%s] fileno: %d %d\n", who, fileno(w) == p[1], fileno(r) == p[0]);
  int l0 = __fsetlocking(w, FSETLOCKING_QUERY);
  int l1 = __fsetlocking(w, FSETLOCKING_BYCALLER);
  int l2 = __fsetlocking(w, FSETLOCKING_INTERNAL);
  printf("[%s] __fsetlocking: %d %d %d %d\n", who, l0, l1, l2, __fsetlocking(w, FSETLOCKING_QUERY));
  errno = 0;
  long t = ftell(r);
  printf("[%s] ftell(pipe): %ld errno %s\n", who, t, en(errno));
  errno = 0;
  int s = fseek(w, 0, SEEK_SET);
  printf("[%s] fseek(pipe): %d errno %s\n", who, s, en(errno));

  // Fully buffered by default: nothing reaches the pipe before fflush.
  fputs("buffered\n", w);
  printf("[%s] before fflush: '%s'\n", who, pending(p[0]));
  fflush(w);
  printf("[%s] after fflush: '%s'\n", who, pending(p[0]));
  // fflush(NULL) flushes it too.
  fputs("flushed by fflush(NULL)\n", w);
  fflush(NULL);
  printf("[%s] after fflush(NULL): '%s'\n", who, pending(p[0]));
  // Line-buffered, then unbuffered.
  setvbuf(w, NULL, _IOLBF, 0);
  fputs("line one\nhalf ", w);
  printf("[%s] line-buffered: '%s'\n", who, pending(p[0]));
  fflush(w);
  (void)pending(p[0]);
  setvbuf(w, NULL, _IONBF, 0);
  putc('x', w);
  fputc('y', w);
  putc_unlocked('z', w);
  printf("[%s] unbuffered: '%s'\n", who, pending(p[0]));

  // Reading: ungetc, getc macros, fscanf.
  fprintf(w, "42 seventeen\nabc\n");
  int n = 0;
  char word[32] = "";
  int got = fscanf(r, "%d %31s", &n, word);
  printf("[%s] fscanf: %d -> %d '%s'\n", who, got, n, word);
  int c = getc(r);  // the newline
  c = getc_unlocked(r);
  ungetc('Q', r);
  char line[32];
  fgets(line, sizeof line, r);
  printf("[%s] getc %c, ungetc then fgets: %s", who, c, line);

  // freopen onto a regular file, then freopen(NULL) to change the mode.
  char path[64];
  snprintf(path, sizeof path, "/tmp/ringlet-stdio-streams-%d-%s", (int)getpid(), who);
  FILE* f = freopen(path, "w", w);
  printf("[%s] freopen(file, \"w\"): %s, fileno kept %d\n", who, f == w ? "same FILE" : "other", fileno(w) == p[1]);
  fprintf(w, "into the file\n");
  fflush(w);
  f = freopen(NULL, "r", w);
  printf("[%s] freopen(NULL, \"r\"): %s\n", who, f == w ? "same FILE" : "NULL");
  if (f && fgets(line, sizeof line, w)) printf("[%s] read back: %s", who, line);
  errno = 0;
  t = ftell(w);
  printf("[%s] ftell(file): %ld errno %s\n", who, t, en(errno));
  rewind(w);
  printf("[%s] after rewind: ftell %ld, getc %c\n", who, ftell(w), getc(w));
  ungetc('U', w);  // a pushed-back char does not survive freopen
  f = freopen(NULL, "a", w);
  printf("[%s] freopen(NULL, \"a\"): %s, ftell %ld\n", who, f == w ? "same FILE" : "NULL", ftell(w));
  fputs("appended\n", w);
  f = freopen(NULL, "r", w);
  if (f && fgets(line, sizeof line, w) && fgets(line, sizeof line, w)) printf("[%s] then: %s", who, line);
  unlink(path);
  fclose(w);
  fclose(r);

  // fopen of a FIFO: "+" (O_RDWR, no wait for a peer), "e" (close-on-exec), "x" (EEXIST).
  snprintf(path, sizeof path, "/tmp/ringlet-stdio-streams-fifo-%d-%s", (int)getpid(), who);
  mkfifo(path, 0600);
  FILE* ff = fopen(path, "r+e");
  printf("[%s] fopen(fifo, \"r+e\"): %s, close-on-exec %d\n", who, ff ? "a FILE" : "NULL",
         ff ? (fcntl(fileno(ff), F_GETFD) & FD_CLOEXEC) != 0 : -1);
  if (ff) {
    fputs("through the fifo\n", ff);
    fflush(ff);
    printf("[%s] fifo round trip: %s", who, fgets(line, sizeof line, ff) ? line : "NULL\n");
    fclose(ff);
  }
  errno = 0;
  ff = fopen(path, "wx");
  printf("[%s] fopen(fifo, \"wx\"): %s errno %s\n", who, ff ? "a FILE" : "NULL", en(errno));
  unlink(path);
  return NULL;
}

int main(void) {
  alarm(60);
  run("main");
  fflush(stdout);
  pthread_t t;
  pthread_create(&t, NULL, run, "thread");
  pthread_join(t, NULL);
  return 0;
}
