// Issue 20's acceptance server: thread-per-connection, each connection served with fdopen +
// getline + fprintf + fflush. 10 clients connect first and stay silent (their server threads
// sit in getline); then 200 clients x 50 lines, 20 at a time, each reading its echoes with
// fgets on a FILE of its own. Natively the silent ones are harmless; if a getline blocked its
// OS thread, nothing else would be served and alarm() would end the run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kSilent = 10, kClients = 200, kLines = 50, kWorkers = 20 };

static int g_port;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_intact, g_bad;
static int g_release[2];  // the silent clients wait for a byte here

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  FILE* in = fdopen(fd, "r");
  FILE* out = fdopen(dup(fd), "w");
  if (!in || !out) {
    perror("fdopen");
    exit(2);
  }
  char* line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, in)) > 0) {
    fprintf(out, "echo %zd %s", n, line);
    fflush(out);
  }
  free(line);
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

static int dial(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(g_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    exit(2);
  }
  return s;
}

static void* silent(void* arg) {
  (void)arg;
  int s = dial();
  char b;
  if (read(g_release[0], &b, 1) < 0) perror("read");
  close(s);
  return NULL;
}

static void* worker(void* arg) {
  int w = (int)(long)arg;
  for (int c = w; c < kClients; c += kWorkers) {
    int s = dial();
    FILE* in = fdopen(s, "r");
    FILE* out = fdopen(dup(s), "w");
    long intact = 0, bad = 0;
    char want[128], got[128], sent[96];
    for (int l = 0; l < kLines; ++l) {
      int len = snprintf(sent, sizeof sent, "client %d line %d %.*s\n", c, l, l % 30, "abcdefghijklmnopqrstuvwxyz0123");
      fputs(sent, out);
      fflush(out);
      snprintf(want, sizeof want, "echo %d %s", len, sent);
      if (fgets(got, sizeof got, in) && strcmp(got, want) == 0) ++intact;
      else ++bad;
    }
    fclose(out);
    // The server closes after our EOF: fgets sees it.
    shutdown(s, SHUT_WR);
    if (fgets(got, sizeof got, in) != NULL || !feof(in)) ++bad;
    fclose(in);
    pthread_mutex_lock(&g_mu);
    g_intact += intact;
    g_bad += bad;
    pthread_mutex_unlock(&g_mu);
  }
  return NULL;
}

int main(void) {
  alarm(60);
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 512) ||
      getsockname(ls, (struct sockaddr*)&a, &al)) {
    perror("listen");
    return 2;
  }
  g_port = ntohs(a.sin_port);
  if (pipe(g_release)) return 2;
  pthread_t acc, sil[kSilent], wk[kWorkers];
  pthread_create(&acc, NULL, acceptor, (void*)(long)ls);
  for (int i = 0; i < kSilent; ++i) pthread_create(&sil[i], NULL, silent, NULL);
  usleep(100 * 1000);  // the silent clients are connected, their servers in getline
  for (int i = 0; i < kWorkers; ++i) pthread_create(&wk[i], NULL, worker, (void*)(long)i);
  for (int i = 0; i < kWorkers; ++i) pthread_join(wk[i], NULL);
  printf("%d clients x %d lines served while %d clients stayed silent\n", kClients, kLines, kSilent);
  printf("lines intact: %ld of %d, bad: %ld\n", g_intact, kClients * kLines, g_bad);
  if (write(g_release[1], "xxxxxxxxxx", kSilent) != kSilent) return 2;
  for (int i = 0; i < kSilent; ++i) pthread_join(sil[i], NULL);
  printf("silent clients released\n");
  return g_bad == 0 && g_intact == kClients * kLines ? 0 : 1;
}
