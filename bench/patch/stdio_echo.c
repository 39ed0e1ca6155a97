// fgets line echo over loopback TCP: a thread-per-connection server that serves each socket
// with fdopen + fgets + fputs + fflush, and CONNS client threads that each send LINES lines
// one at a time (fputs + fflush) and read each echo back with fgets. Both ends run in this
// process: natively as OS threads, under ringlet-run as fiber threads on one OS thread.
// Prints the process's CPU time (user + system) per echoed line, and the wall time.
//   stdio_echo [CONNS] [LINES]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int g_port, g_lines;

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  FILE* in = fdopen(fd, "r");
  FILE* out = fdopen(dup(fd), "w");
  char line[256];
  while (fgets(line, sizeof line, in)) {
    fputs(line, out);
    fflush(out);
  }
  fclose(out);
  fclose(in);
  return NULL;
}

static void* acceptor(void* arg) {
  int ls = (int)(long)arg;
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    pthread_t t;
    pthread_create(&t, NULL, serve, (void*)(long)c);
    pthread_detach(t);
  }
  return NULL;
}

static void* client(void* arg) {
  (void)arg;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr*)&a, sizeof a)) abort();
  FILE* in = fdopen(s, "r");
  FILE* out = fdopen(dup(s), "w");
  char line[256];
  for (int i = 0; i < g_lines; ++i) {
    fputs("a line of some fifty bytes, echoed back by fgets\n", out);
    fflush(out);
    if (!fgets(line, sizeof line, in)) abort();
  }
  fclose(out);
  fclose(in);
  return NULL;
}

static double secs(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

int main(int argc, char** argv) {
  int conns = argc > 1 ? atoi(argv[1]) : 50;
  g_lines = argc > 2 ? atoi(argv[2]) : 2000;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 512) || getsockname(ls, (struct sockaddr*)&a, &al))
    return 2;
  g_port = ntohs(a.sin_port);
  pthread_t acc;
  pthread_create(&acc, NULL, acceptor, (void*)(long)ls);
  struct timespec w0, w1;
  struct rusage r0, r1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  getrusage(RUSAGE_SELF, &r0);
  pthread_t* t = malloc(sizeof(pthread_t) * conns);
  for (int i = 0; i < conns; ++i) pthread_create(&t[i], NULL, client, NULL);
  for (int i = 0; i < conns; ++i) pthread_join(t[i], NULL);
  getrusage(RUSAGE_SELF, &r1);
  clock_gettime(CLOCK_MONOTONIC, &w1);
  double cpu = secs(r1.ru_utime) - secs(r0.ru_utime) + secs(r1.ru_stime) - secs(r0.ru_stime);
  double wall = (w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9;
  printf("%.3f %.3f\n", cpu * 1e6 / ((double)conns * g_lines), wall);
  return 0;
}
