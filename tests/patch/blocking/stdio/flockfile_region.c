// A thread holds flockfile(stdout) across a 20 ms sleep between two fputs, five times, while
// 4 threads printf in a loop: natively every line is whole and each region's two lines are
// adjacent (the printfs wait for the region). stdout is a pipe or a regular file: the
// program runs itself with stdout redirected and checks what the child wrote.
//   flockfile_region pipe | file | slow-pipe
// slow-pipe: the reader starts 300 ms late and each worker prints at least 2000 lines, so
// the pipe fills and writes wait inside the FILE while other threads want it.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { kWorkers = 4, kRegions = 5 };
static volatile int g_done;
static int g_min_lines = 50;

static void* worker(void* arg) {
  int w = (int)(long)arg;
  for (int i = 0; !g_done || i < g_min_lines; ++i) {
    printf("worker %d line %d\n", w, i);
    if (i % 8 == 0) usleep(1000);  // let the others (and the region) run
  }
  return NULL;
}

static int child(void) {
  pthread_t t[kWorkers];
  for (int i = 0; i < kWorkers; ++i) pthread_create(&t[i], NULL, worker, (void*)(long)i);
  for (int r = 0; r < kRegions; ++r) {
    usleep(3000);
    flockfile(stdout);
    fputs("region first line\n", stdout);
    usleep(20 * 1000);
    fputs("region second line\n", stdout);
    funlockfile(stdout);
  }
  g_done = 1;
  for (int i = 0; i < kWorkers; ++i) pthread_join(t[i], NULL);
  return 0;
}

// Checks the child's output: every line one of the forms printed, each "first" followed by
// its "second".
static int check(const char* what, FILE* in) {
  char line[256];
  long lines = 0, torn = 0, regions = 0, adjacent = 0;
  int in_region = 0;
  while (fgets(line, sizeof line, in)) {
    ++lines;
    int w, i;
    char tail;
    if (strcmp(line, "region first line\n") == 0) {
      ++regions;
      if (in_region) ++torn;
      in_region = 1;
      continue;
    }
    if (strcmp(line, "region second line\n") == 0) {
      if (in_region) ++adjacent;
      in_region = 0;
      continue;
    }
    in_region = 0;
    if (sscanf(line, "worker %d line %d%c", &w, &i, &tail) != 3 || tail != '\n' || w < 0 || w >= kWorkers)
      ++torn;
  }
  printf("%s: every line whole: %s\n", what, torn == 0 ? "yes" : "NO");
  printf("%s: regions %ld, with their two lines adjacent: %ld\n", what, regions, adjacent);
  printf("%s: the workers printed while the regions ran: %s\n", what, lines > 4 * 50 ? "yes" : "NO");
  return torn == 0 && regions == kRegions && adjacent == kRegions ? 0 : 1;
}

int main(int argc, char** argv) {
  alarm(60);
  if (argc < 2) return 2;
  if (strcmp(argv[1], "child") == 0) {
    if (argc > 2) g_min_lines = atoi(argv[2]);
    return child();
  }
  const int slow = strcmp(argv[1], "slow-pipe") == 0;
  const int use_pipe = slow || strcmp(argv[1], "pipe") == 0;
  int p[2] = {-1, -1};
  char path[64];
  int fd;
  if (use_pipe) {
    if (pipe(p)) return 2;
    fd = p[1];
  } else {
    snprintf(path, sizeof path, "/tmp/ringlet-stdio-flock-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0) return 2;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd, 1);
    if (use_pipe) close(p[0]);
    execl("/proc/self/exe", argv[0], "child", slow ? "2000" : "50", (char*)NULL);
    _exit(127);
  }
  FILE* in;
  if (use_pipe) {
    close(p[1]);
    if (slow) usleep(300 * 1000);
    in = fdopen(p[0], "r");
  } else {
    int st;
    waitpid(pid, &st, 0);
    in = fopen(path, "r");
    unlink(path);
  }
  int r = check(argv[1], in);
  fclose(in);
  int st;
  if (use_pipe) waitpid(pid, &st, 0);
  return r;
}
