// One thread blocks ~1 s in a stdio read while another ticks 20 x 20 ms: natively the ticks
// end at ~0.4 s, long before the read returns. If the read blocked its OS thread (every
// fiber thread on it), the ticks would end after it.
//   blocked_read fgets-pipe    fgets on a pipe FILE (fdopen); another thread writes after 1 s
//   blocked_read fread-fifo    fread on a FIFO opened with fopen; another thread writes after 1 s
//   blocked_read getline-stdin getline(stdin) where stdin is a pipe: the program runs itself
//                              with a pipe on stdin and writes the line after 1 s
//   blocked_read fgets-tty     fgets on a pseudo-terminal opened with fopen (line-buffered, as
//                              a terminal is); another thread types the line after 1 s
//   blocked_read fgets-popen   fgets on a popen'ed command that prints its line after 1 s,
//                              then pclose's status
#define _GNU_SOURCE
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile double g_ticks_done;

static void* ticker(void* arg) {
  (void)arg;
  for (int i = 0; i < 20; ++i) usleep(20 * 1000);
  g_ticks_done = now();
  return NULL;
}

static int g_wfd;
static void* late_writer(void* arg) {
  (void)arg;
  sleep(1);
  if (write(g_wfd, "hello, late line\n", 17) != 17) perror("write");
  return NULL;
}

// The blocking read on `fp`, with the ticker running; prints the verdict.
static int read_while_ticking(const char* what, FILE* fp, int use_fread, int use_getline) {
  pthread_t t;
  pthread_create(&t, NULL, ticker, NULL);
  char buf[64] = {0};
  int ok;
  errno = 0;
  if (use_fread) {
    ok = fread(buf, 1, 17, fp) == 17;
  } else if (use_getline) {
    char* line = NULL;
    size_t cap = 0;
    ok = getline(&line, &cap, fp) == 17;
    if (ok) strcpy(buf, line);
    free(line);
  } else {
    ok = fgets(buf, sizeof buf, fp) != NULL;
  }
  const double read_done = now();
  const int err = errno;
  pthread_join(t, NULL);
  printf("%s: read %s (errno %s): %s", what, ok ? "ok" : "FAILED", err == 0 ? "kept" : strerror(err),
         ok ? buf : "\n");
  const int before = g_ticks_done < read_done;
  printf("%s: the ticks ended before the read returned: %s\n", what, before ? "yes" : "NO");
  return ok && before ? 0 : 1;
}

int main(int argc, char** argv) {
  alarm(60);
  if (argc < 2) return 2;
  const char* mode = argv[1];
  if (strcmp(mode, "fgets-pipe") == 0) {
    int p[2];
    if (pipe(p)) return 2;
    g_wfd = p[1];
    FILE* fp = fdopen(p[0], "r");
    pthread_t w;
    pthread_create(&w, NULL, late_writer, NULL);
    int r = read_while_ticking(mode, fp, 0, 0);
    pthread_join(w, NULL);
    fclose(fp);
    return r;
  }
  if (strcmp(mode, "fread-fifo") == 0) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/ringlet-stdio-fifo-%d", (int)getpid());
    unlink(path);
    if (mkfifo(path, 0600)) return 2;
    g_wfd = open(path, O_RDWR);  // a writer exists: the reader's open does not wait
    FILE* fp = fopen(path, "r");
    unlink(path);
    if (!fp) {
      perror("fopen");
      return 2;
    }
    pthread_t w;
    pthread_create(&w, NULL, late_writer, NULL);
    int r = read_while_ticking(mode, fp, 1, 0);
    pthread_join(w, NULL);
    fclose(fp);
    return r;
  }
  if (strcmp(mode, "fgets-tty") == 0) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) {
      perror("posix_openpt");
      return 2;
    }
    g_wfd = m;
    FILE* fp = fopen(ptsname(m), "r+");
    if (!fp) {
      perror("fopen");
      return 2;
    }
    // A terminal's FILE is line-buffered: a line written reaches the other side at once.
    fputs("to the terminal\n", fp);
    char echo[64];
    ssize_t n = read(m, echo, sizeof echo);
    printf("%s: line-buffered: %s\n", mode, n > 0 ? "yes" : "NO");
    pthread_t w;
    pthread_create(&w, NULL, late_writer, NULL);
    int r = read_while_ticking(mode, fp, 0, 0);
    pthread_join(w, NULL);
    fclose(fp);
    close(m);
    return r;
  }
  if (strcmp(mode, "fgets-popen") == 0) {
    FILE* fp = popen("sleep 1; echo 'hello, late line'; exit 3", "r");
    if (!fp) {
      perror("popen");
      return 2;
    }
    int r = read_while_ticking(mode, fp, 0, 0);
    const int st = pclose(fp);
    printf("%s: pclose: %s %d\n", mode, WIFEXITED(st) ? "exit" : "not exited", WEXITSTATUS(st));
    return r;
  }
  if (strcmp(mode, "getline-stdin") == 0) {
    int p[2];
    if (pipe(p)) return 2;
    pid_t pid = fork();
    if (pid == 0) {
      dup2(p[0], 0);
      close(p[0]);
      close(p[1]);
      execl("/proc/self/exe", argv[0], "getline-stdin-child", (char*)NULL);
      _exit(127);
    }
    close(p[0]);
    sleep(1);
    if (write(p[1], "hello, late line\n", 17) != 17) perror("write");
    close(p[1]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
  }
  if (strcmp(mode, "getline-stdin-child") == 0) return read_while_ticking("getline-stdin", stdin, 0, 1);
  return 2;
}
