// exec while the blocking monitor samples the thread: a chain of generations, each exec'ing
// the next. Under ringlet-run with the monitor at 1 ms, each generation computes for about
// the monitor's threshold (0.6 to 1.4 ms, varied) and then execs with 1 MiB of arguments,
// which the kernel copies before it ends the process's other threads (the monitor's among
// them): the monitor's sample of that stretch tends to come inside execve. A signal it sent
// then would stay pending across the exec (the kernel keeps it) and meet the new image's
// default action: the process would end by SIGRTMAX-1. Each generation must exec the next;
// the last prints how many there were.
//   exec_sampled [N]   (N generations, 30 by default)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kPad = 8, kPadLen = 128 * 1024 - 1 };

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char** argv) {
  const int total = argc > 1 ? atoi(argv[1]) : 30;
  const int gen = argc > 2 ? atoi(argv[2]) : 1;
  if (total < 1) {
    fprintf(stderr, "usage: exec_sampled [N>0]\n");
    return 2;
  }
  if (gen >= total) {
    printf("%d generations exec'd one another\n", total);
    return 0;
  }
  static char pad[kPadLen + 1];
  memset(pad, 'x', kPadLen);
  char t[16], g[16];
  snprintf(t, sizeof t, "%d", total);
  snprintf(g, sizeof g, "%d", gen + 1);
  char* args[4 + kPad];
  args[0] = argv[0];
  args[1] = t;
  args[2] = g;
  for (int i = 0; i < kPad; ++i) args[3 + i] = pad;
  args[3 + kPad] = NULL;
  usleep(1000);  // a switch: the stretch the monitor measures starts here
  const long long spin = 600000 + (gen * 7919) % 800000;
  for (const long long start = now_ns(); now_ns() - start < spin;) {
  }
  execv("/proc/self/exe", args);
  perror("execv");
  return 1;
}
