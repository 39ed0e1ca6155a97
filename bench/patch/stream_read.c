/* Reads that usually find their data already there (a server reading a request stream in
 * small pieces): the case an attempt hint must not make worse.
 *
 *   stream_read server PORT READ_BYTES   thread per connection: read() READ_BYTES at a time
 *                                        until EOF, then answer one byte and close
 *   stream_read client PORT CONNS MB [SERVER_PID]
 *                                        CONNS threads each write MB MiB in 64 KiB writes,
 *                                        shut down, wait for the byte; prints MiB/s, the
 *                                        server's reads per second and (with SERVER_PID) its
 *                                        CPU time per MiB
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static size_t g_read_bytes;
static int g_port;
static long g_mb;

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char* buf = malloc(g_read_bytes);
  ssize_t n;
  while ((n = read(fd, buf, g_read_bytes)) > 0) {
  }
  char c = 'k';
  if (write(fd, &c, 1) != 1) perror("write");
  close(fd);
  free(buf);
  return NULL;
}

static int server(void) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr*)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
    perror("listen");
    return 1;
  }
  printf("listening on %d\n", g_port);
  fflush(stdout);
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) { perror("accept"); continue; }
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void*)(long)c) != 0) { close(c); continue; }
    pthread_detach(t);
  }
}

static void* send_all(void* arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) < 0) { perror("connect"); exit(1); }
  static char chunk[65536];
  for (long i = 0; i < g_mb * 16; i++) {
    size_t off = 0;
    while (off < sizeof chunk) {
      ssize_t w = write(fd, chunk + off, sizeof chunk - off);
      if (w <= 0) { perror("write"); exit(1); }
      off += (size_t)w;
    }
  }
  shutdown(fd, SHUT_WR);
  char c;
  if (read(fd, &c, 1) != 1) { fprintf(stderr, "no answer\n"); exit(1); }
  close(fd);
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(const char* pid) {  /* utime + stime of every thread of pid */
  char path[64], line[4096];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f || !fgets(line, sizeof line, f)) { if (f) fclose(f); return 0; }
  fclose(f);
  char* p = strrchr(line, ')');
  unsigned long ut = 0, st = 0;
  /* after ") ": state(3) ... utime is field 14, stime 15 */
  sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char** argv) {
  if (argc >= 4 && strcmp(argv[1], "server") == 0) {
    g_port = atoi(argv[2]);
    g_read_bytes = (size_t)atol(argv[3]);
    return server();
  }
  if (argc >= 5 && strcmp(argv[1], "client") == 0) {
    g_port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    g_mb = atol(argv[4]);
    const char* pid = argc > 5 ? argv[5] : NULL;
    pthread_t* t = calloc((size_t)conns, sizeof *t);
    double c0 = pid ? cpu_s(pid) : 0, t0 = now();
    for (int i = 0; i < conns; i++) pthread_create(&t[i], NULL, send_all, NULL);
    for (int i = 0; i < conns; i++) pthread_join(t[i], NULL);
    double dt = now() - t0, c1 = pid ? cpu_s(pid) : 0;
    double mib = (double)conns * (double)g_mb;
    printf("mib_per_s=%.1f seconds=%.3f server_cpu_ms_per_mib=%.3f\n", mib / dt, dt,
           pid ? (c1 - c0) * 1000.0 / mib : 0.0);
    return 0;
  }
  fprintf(stderr, "usage: stream_read server PORT READ_BYTES | client PORT CONNS MB [SERVER_PID]\n");
  return 2;
}
