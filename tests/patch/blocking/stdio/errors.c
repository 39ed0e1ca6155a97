// ferror / feof / errno on stdio FILEs over sockets and pipes, as natively: after EOF, after a
// peer's reset (read and write), a write to a pipe nobody reads, fclose of a FILE whose
// descriptor is gone, and fdopen / fopen given bad arguments. Run on a fiber thread too.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char* en(int e) {
  const char* n = strerrorname_np(e);
  return e == 0 ? "0" : n ? n : "?";
}

// A connected TCP pair over loopback: *a the client end, *b the accepted one.
static void tcp_pair(int* a, int* b) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof sa;
  bind(ls, (struct sockaddr*)&sa, sizeof sa);
  listen(ls, 1);
  getsockname(ls, (struct sockaddr*)&sa, &l);
  *a = socket(AF_INET, SOCK_STREAM, 0);
  connect(*a, (struct sockaddr*)&sa, sizeof sa);
  *b = accept(ls, NULL, NULL);
  close(ls);
}

static void* run(void* name) {
  char buf[64];
  int a, b;

  // EOF: the peer shuts its side.
  tcp_pair(&a, &b);
  FILE* f = fdopen(b, "r+");
  if (write(a, "one line\n", 9) != 9) perror("write");
  shutdown(a, SHUT_WR);
  char* got = fgets(buf, sizeof buf, f);
  printf("[%s] eof: first fgets %s, feof %d ferror %d\n", (char*)name, got ? buf : "NULL\n", feof(f), ferror(f));
  errno = 0;
  got = fgets(buf, sizeof buf, f);
  printf("[%s] eof: fgets %s, feof %d ferror %d errno %s\n", (char*)name, got ? "a line" : "NULL", feof(f), ferror(f), en(errno));
  errno = 0;
  int c = fgetc(f);
  printf("[%s] eof: fgetc %d errno %s\n", (char*)name, c, en(errno));
  clearerr(f);
  printf("[%s] eof: after clearerr feof %d ferror %d\n", (char*)name, feof(f), ferror(f));
  fclose(f);
  close(a);

  // Reset: the peer closes with SO_LINGER 0.
  tcp_pair(&a, &b);
  f = fdopen(b, "r+");
  struct linger lg = {1, 0};
  setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(a);
  usleep(10 * 1000);
  errno = 0;
  got = fgets(buf, sizeof buf, f);
  printf("[%s] reset: fgets %s, feof %d ferror %d errno %s\n", (char*)name, got ? "a line" : "NULL", feof(f), ferror(f), en(errno));
  clearerr(f);
  errno = 0;
  int w = fputs("into the void\n", f);
  int fl = fflush(f);
  printf("[%s] reset: fputs %d fflush %d ferror %d errno %s\n", (char*)name, w >= 0, fl, ferror(f), en(errno));
  fclose(f);

  // A pipe whose reader is gone.
  int p[2];
  if (pipe(p)) return NULL;
  close(p[0]);
  f = fdopen(p[1], "w");
  errno = 0;
  fputs("nobody reads\n", f);
  fl = fflush(f);
  printf("[%s] broken pipe: fflush %d ferror %d errno %s\n", (char*)name, fl, ferror(f), en(errno));
  fclose(f);

  // fclose of a FILE whose descriptor was closed under it.
  if (pipe(p)) return NULL;
  f = fdopen(p[0], "r");
  close(p[0]);
  errno = 0;
  int r = fclose(f);
  printf("[%s] fclose of a closed descriptor: %d errno %s\n", (char*)name, r, en(errno));
  close(p[1]);

  // Bad arguments.
  if (pipe(p)) return NULL;
  errno = 0;
  f = fdopen(p[0], "w");
  printf("[%s] fdopen(read end, \"w\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  errno = 0;
  f = fdopen(p[0], "q");
  printf("[%s] fdopen(read end, \"q\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  errno = 0;
  f = fdopen(p[1], "r+");
  printf("[%s] fdopen(write end, \"r+\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  errno = 0;
  f = fdopen(-1, "r");
  printf("[%s] fdopen(-1, \"r\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  close(p[0]);
  close(p[1]);
  char path[64];
  snprintf(path, sizeof path, "/tmp/ringlet-stdio-err-%d", (int)getpid());
  mkfifo(path, 0600);
  errno = 0;
  f = fopen(path, "z");
  printf("[%s] fopen(fifo, \"z\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  unlink(path);
  errno = 0;
  f = fopen(path, "r");
  printf("[%s] fopen(missing, \"r\"): %s errno %s\n", (char*)name, f ? "a FILE" : "NULL", en(errno));
  return NULL;
}

static void on_usr1(int sig) { (void)sig; }

// fgets parked on an empty pipe when a signal whose handler lacks SA_RESTART comes: NULL,
// the error flag, EINTR; with SA_RESTART the read goes on and the line comes.
static int g_wfd;
static volatile int g_reading;
static void* reader(void* arg) {
  char b[32];
  g_reading = 1;
  errno = 0;
  char* r = fgets(b, sizeof b, (FILE*)arg);
  printf("signal: fgets %s, ferror %d errno %s\n", r ? b : "NULL", ferror((FILE*)arg), en(errno));
  return NULL;
}
static void signal_case(int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sa.sa_flags = flags;
  sigaction(SIGUSR1, &sa, NULL);
  int p[2];
  if (pipe(p)) return;
  g_wfd = p[1];
  FILE* f = fdopen(p[0], "r");
  pthread_t t;
  g_reading = 0;
  pthread_create(&t, NULL, reader, f);
  while (!g_reading) usleep(1000);
  usleep(200 * 1000);  // it is in fgets by now
  pthread_kill(t, SIGUSR1);
  usleep(200 * 1000);
  if (write(p[1], "a late line\n", 12) != 12) perror("write");
  pthread_join(t, NULL);
  fclose(f);
  close(p[1]);
}

int main(void) {
  alarm(60);
  signal(SIGPIPE, SIG_IGN);
  run("main");
  fflush(stdout);
  pthread_t t;
  pthread_create(&t, NULL, run, "thread");
  pthread_join(t, NULL);
  fflush(stdout);
  signal_case(0);
  signal_case(SA_RESTART);
  return 0;
}
