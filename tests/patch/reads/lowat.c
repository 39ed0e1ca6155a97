// A blocking recv on a TCP socket whose reads SO_RCVLOWAT shapes. Under ringlet-run the epoll
// engine parks a read without trying it when a short read found the receive queue empty and
// no event has come since (patch/README.md, "Reads and writes"). With a low-water mark that is not
// enough: bytes below the mark raise no event, yet a recv asking for fewer bytes than the
// mark returns them at once. So the patch must not declare such reads plain, wherever the
// mark came from:
//   set    - setsockopt on the connected socket;
//   dup    - setsockopt through a dup of it, the original number read;
//   listen - set on the listener, inherited by the accepted socket;
//   unseen - set by a raw syscall before the patch first saw the socket;
//   none   - no mark (the plain path itself: its next read wakes on the arrival's event).
// Each case runs in a process of its own (the program runs itself with the case's name):
// once a mark is set anywhere, the patch stops declaring any read plain.
// Each case: the reader's first recv(100) parks and returns the 8 bytes of one send (a short
// read); then 3 bytes arrive (below the mark of 8); recv(2) must return 2 of them at once.
// A reader still waiting after 2 s is unblocked by 7 more bytes and prints "late".
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char* what) {
  perror(what);
  exit(1);
}

struct pairing {
  int reader;         // the socket read
  int writer;         // its peer
  int to_writer[2];   // reader -> writer: "first read done", "second read done"
  int to_reader[2];   // writer -> reader: "3 bytes sent"
};

static void put(int fd) {
  if (write(fd, "x", 1) != 1) die("write pipe");
}

static void take(int fd) {
  char c;
  if (read(fd, &c, 1) != 1) die("read pipe");
}

static void* writer_main(void* arg) {
  struct pairing* p = arg;
  usleep(50 * 1000);  // the reader parks first
  if (send(p->writer, "12345678", 8, 0) != 8) die("send 8");
  take(p->to_writer[0]);
  if (send(p->writer, "abc", 3, 0) != 3) die("send 3");
  put(p->to_reader[1]);
  struct pollfd pf = {p->to_writer[0], POLLIN, 0};
  if (poll(&pf, 1, 2000) == 0 && send(p->writer, "defghij", 7, 0) != 7) die("send 7");
  take(p->to_writer[0]);
  close(p->writer);
  return NULL;
}

static int listener(int lowat) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) die("socket");
  if (lowat && setsockopt(l, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0) die("lowat listener");
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr*)&a, sizeof a) != 0 || listen(l, 4) != 0) die("bind/listen");
  return l;
}

static void run(const char* name) {
  const int lowat = 8;
  const int on_listener = strcmp(name, "listen") == 0;
  const int unseen = strcmp(name, "unseen") == 0;
  int l = listener(on_listener ? lowat : 0);
  struct sockaddr_in a;
  socklen_t alen = sizeof a;
  if (getsockname(l, (struct sockaddr*)&a, &alen) != 0) die("getsockname");
  // "unseen": the reading end is the connecting one, made and marked by raw system calls.
  int c = unseen ? (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) : socket(AF_INET, SOCK_STREAM, 0);
  if (c < 0) die("client socket");
  if (unseen && syscall(SYS_setsockopt, c, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0)
    die("raw lowat");
  if (connect(c, (struct sockaddr*)&a, sizeof a) != 0) die("connect");
  int s = accept(l, NULL, NULL);
  if (s < 0) die("accept");
  close(l);
  struct pairing p;
  p.reader = unseen ? c : s;
  p.writer = unseen ? s : c;
  if (strcmp(name, "set") == 0 && setsockopt(p.reader, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0)
    die("lowat");
  if (strcmp(name, "dup") == 0) {
    const int d = dup(p.reader);
    if (d < 0 || setsockopt(d, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) != 0) die("dup lowat");
    close(d);
  }
  if (pipe(p.to_writer) != 0 || pipe(p.to_reader) != 0) die("pipe");
  int mark = 0;
  socklen_t mlen = sizeof mark;
  if (getsockopt(p.reader, SOL_SOCKET, SO_RCVLOWAT, &mark, &mlen) != 0) die("getsockopt");
  pthread_t t;
  if (pthread_create(&t, NULL, writer_main, &p) != 0) die("pthread_create");
  char buf[100];
  const ssize_t first = recv(p.reader, buf, sizeof buf, 0);
  put(p.to_writer[1]);
  take(p.to_reader[0]);
  const double t0 = now_s();
  const ssize_t second = recv(p.reader, buf, 2, 0);
  const double waited = now_s() - t0;
  put(p.to_writer[1]);
  printf("%-6s mark %d: first recv %zd, recv(2) %zd \"%.*s\", %s", name, mark, first, second,
         second > 0 ? (int)second : 0, buf, waited < 1.0 ? "at once" : "late");
  // What is left, to the end of the stream.
  size_t rest = 0;
  ssize_t k;
  while ((k = recv(p.reader, buf, sizeof buf, 0)) > 0) rest += (size_t)k;
  printf(", then %zu more\n", rest);
  pthread_join(t, NULL);
  close(p.reader);
  for (int i = 0; i < 2; ++i) close(p.to_writer[i]), close(p.to_reader[i]);
  if (waited >= 1.0) exit(1);
}

int main(int argc, char** argv) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 2) {
    run(argv[1]);
    return 0;
  }
  static const char* const cases[] = {"none", "set", "dup", "listen", "unseen"};
  int failed = 0;
  for (size_t i = 0; i < sizeof cases / sizeof *cases; ++i) {
    const pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      execl("/proc/self/exe", argv[0], cases[i], (char*)NULL);
      die("execl");
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      printf("%s: failed (status %#x)\n", cases[i], status);
      failed = 1;
    }
  }
  return failed;
}
