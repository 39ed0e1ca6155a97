/* One single-threaded program's work, timed natively and under ringlet-run by run.sh.
     work pipe N    N write+read round trips on a pipe (never blocks)
     work tcp N     N blocking round trips with a forked echo child over TCP (blocks)
     work sleep N   N sleeps of 200 us (blocks)
   Prints the wall time in seconds.                                                        */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: work pipe|tcp|sleep N\n");
    return 2;
  }
  long n = atol(argv[2]);
  char buf[64] = "0123456789abcdef0123456789abcdef";
  double t0 = now();
  if (strcmp(argv[1], "pipe") == 0) {
    int p[2];
    if (pipe(p) != 0) return 1;
    for (long i = 0; i < n; ++i)
      if (write(p[1], buf, 32) != 32 || read(p[0], buf, 32) != 32) return 1;
  } else if (strcmp(argv[1], "sleep") == 0) {
    for (long i = 0; i < n; ++i) usleep(200);
  } else if (strcmp(argv[1], "tcp") == 0) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 1) || getsockname(ls, (struct sockaddr*)&a, &len))
      return 1;
    pid_t pid = fork();
    if (pid == 0) {
      int c = accept(ls, NULL, NULL);
      ssize_t k;
      while ((k = read(c, buf, sizeof buf)) > 0)
        if (write(c, buf, (size_t)k) != k) _exit(1);
      _exit(0);
    }
    close(ls);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (struct sockaddr*)&a, sizeof a)) return 1;
    t0 = now();
    for (long i = 0; i < n; ++i)
      if (write(s, buf, 32) != 32 || read(s, buf, 32) != 32) return 1;
    close(s);
    waitpid(pid, NULL, 0);
  } else {
    fprintf(stderr, "work: unknown mode %s\n", argv[1]);
    return 2;
  }
  printf("%.4f\n", now() - t0);
  return 0;
}
