// fopen + fclose of a regular file, N pairs; prints ns per pair.
//   stdio_fopen [N]
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  long n = argc > 1 ? atol(argv[1]) : 100000;
  char path[] = "/tmp/ringlet-stdio-fopen-XXXXXX";
  close(mkstemp(path));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < n; ++i) fclose(fopen(path, "r"));
  clock_gettime(CLOCK_MONOTONIC, &b);
  unlink(path);
  printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
  return 0;
}
