// fputs of a 32-byte line to a regular file (fully buffered), N calls per batch, BATCHES
// batches; prints the median ns per call (build it with -fno-builtin-fputs, or gcc calls
// fwrite instead). Under ringlet-run main runs on a fiber and every
// fputs goes through the patch's hook (a regular file: glibc's call at once).
//   stdio_fputs [N] [BATCHES]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 2000000;
  int batches = argc > 2 ? atoi(argv[2]) : 9;
  char path[] = "/tmp/ringlet-stdio-fputs-XXXXXX";
  int fd = mkstemp(path);
  FILE* f = fdopen(fd, "w");
  unlink(path);
  double* ns = malloc(sizeof(double) * batches);
  for (int b = 0; b < batches; ++b) {
    rewind(f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; ++i) fputs("thirty-one bytes and a newline\n", f);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns[b] = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n;
  }
  qsort(ns, batches, sizeof(double), cmp);
  printf("%.2f\n", ns[batches / 2]);
  fclose(f);
  return 0;
}
