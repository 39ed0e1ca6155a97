/* stdio's FILE lock between threads: thread A holds flockfile(stdout) across a park (usleep)
 * while thread B printf's to stdout in a loop. Natively B waits for A's funlockfile; under
 * ringlet-run both must finish too (no deadlock: glibc's FILE lock records its owner as the
 * thread's TCB, and its wait is a futex call made inside libc).
 *
 * The deterministic scheme: stdout is made line-buffered and its descriptor is pointed at a
 * temporary file before the threads start, so the traffic (B's 200 lines and A's 2) goes
 * there in whatever interleaving the scheduler produced. After both threads are joined,
 * stdout is flushed and pointed back at the original descriptor, the file is read back, and
 * only the verdict is printed on stdout: that all 202 lines arrived, each exactly once and
 * whole. Whether A's two lines were adjacent (natively flockfile guarantees it) is said on
 * stderr only, which the comparison ignores. If the threads are still running after 30 s, a
 * SIGALRM handler says so on the original stdout and exits 1.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define B_LINES 200

static int saved_stdout = -1;
static sem_t b_started;

static void on_alarm(int sig) {
  (void)sig;
  static const char msg[] =
      "tls_flockfile: FAILED: the threads are still running after 30 s (deadlock?)\n";
  if (write(saved_stdout >= 0 ? saved_stdout : 2, msg, sizeof msg - 1) < 0) _exit(1);
  _exit(1);
}

static void* thread_a(void* arg) {
  (void)arg;
  sem_wait(&b_started); /* B is in the middle of its loop */
  flockfile(stdout);
  fprintf(stdout, "A first\n");
  usleep(20000);
  fprintf(stdout, "A second\n");
  funlockfile(stdout);
  return NULL;
}

static void* thread_b(void* arg) {
  (void)arg;
  for (int i = 0; i < B_LINES; ++i) {
    printf("B %03d\n", i);
    if (i == 50) sem_post(&b_started);
    usleep(200);
  }
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* every line is a write made under the FILE lock */
  saved_stdout = dup(1);
  char path[] = "/tmp/tls_flockfile-XXXXXX";
  int tmp = mkstemp(path);
  if (saved_stdout < 0 || tmp < 0 || dup2(tmp, 1) < 0) {
    perror("tls_flockfile: setting up the temporary file");
    return 1;
  }
  close(tmp);
  signal(SIGALRM, on_alarm);
  alarm(30);

  sem_init(&b_started, 0, 0);
  pthread_t a, b;
  if (pthread_create(&b, NULL, thread_b, NULL) != 0 ||
      pthread_create(&a, NULL, thread_a, NULL) != 0)
    return 1;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  alarm(0);

  fflush(stdout);
  dup2(saved_stdout, 1);
  close(saved_stdout);
  saved_stdout = -1;

  FILE* f = fopen(path, "r");
  unlink(path);
  if (!f) {
    printf("tls_flockfile: FAILED: cannot read the traffic back\n");
    return 1;
  }
  int seen_b[B_LINES] = {0}, seen_a1 = 0, seen_a2 = 0, lines = 0, bad = 0, pos_a1 = -1, pos_a2 = -1;
  char line[256], first_bad[256] = "";
  while (fgets(line, sizeof line, f)) {
    int k;
    char nl;
    ++lines;
    if (strcmp(line, "A first\n") == 0)
      ++seen_a1, pos_a1 = lines;
    else if (strcmp(line, "A second\n") == 0)
      ++seen_a2, pos_a2 = lines;
    else if (strlen(line) == 6 && sscanf(line, "B %3d%c", &k, &nl) == 2 && nl == '\n' && k >= 0 &&
             k < B_LINES)
      ++seen_b[k];
    else if (bad++ == 0)
      snprintf(first_bad, sizeof first_bad, "%s", line);
  }
  fclose(f);
  int missing = 0, twice = 0;
  for (int k = 0; k < B_LINES; ++k) missing += seen_b[k] == 0, twice += seen_b[k] > 1;
  fprintf(stderr, "tls_flockfile: note: A's two locked lines were %s\n",
          pos_a2 == pos_a1 + 1 ? "adjacent" : "NOT adjacent (B wrote inside A's flockfile)");

  if (lines == B_LINES + 2 && !bad && !missing && !twice && seen_a1 == 1 && seen_a2 == 1) {
    printf("tls_flockfile: both finished, %d lines\n", lines);
    return 0;
  }
  printf(
      "tls_flockfile: FAILED: both finished, but %d lines: %d of B's missing, %d twice, A's "
      "first %d times, A's second %d times, %d others%s%.60s\n",
      lines, missing, twice, seen_a1, seen_a2, bad, bad ? ", the first: " : "", first_bad);
  return 1;
}
