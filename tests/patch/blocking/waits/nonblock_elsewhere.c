// A TCP socket this program made with socket()/accept() and read blocking once is then made
// non-blocking from outside: by a forked child, by a copy of this program started with
// posix_spawn, by the process the socket was sent to (SCM_RIGHTS), and through a dup with a
// raw fcntl. Each time a read must answer EAGAIN at once, as natively: under ringlet-run the
// patch trusts such a socket's flag without asking the kernel (patch/state.hpp, kPrivate)
// only while nothing of this kind has happened. A read that waited instead is ended by a
// 2 s alarm (EINTR), so a difference shows in the output rather than as a hang.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

struct pair {
  int listener, client, server;
};

static void make_pair(struct pair* p) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t n = sizeof a;
  p->listener = socket(AF_INET, SOCK_STREAM, 0);
  if (p->listener < 0 || bind(p->listener, (struct sockaddr*)&a, sizeof a) != 0 || listen(p->listener, 4) != 0 ||
      getsockname(p->listener, (struct sockaddr*)&a, &n) != 0) {
    perror("listener");
    exit(1);
  }
  p->client = socket(AF_INET, SOCK_STREAM, 0);
  if (p->client < 0 || connect(p->client, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  p->server = accept(p->listener, NULL, NULL);
  if (p->server < 0) {
    perror("accept");
    exit(1);
  }
}

static void close_pair(struct pair* p) {
  close(p->listener);
  close(p->client);
  close(p->server);
}

static void* write_late(void* arg) {
  usleep(50000);
  if (write(*(int*)arg, "w", 1) != 1) perror("write");
  return NULL;
}

// A blocking read that waits for another thread's byte: the socket is blocking, and read so.
static void read_waits(struct pair* p) {
  pthread_t t;
  pthread_create(&t, NULL, write_late, &p->client);
  char c = 0;
  const ssize_t r = read(p->server, &c, 1);
  pthread_join(t, NULL);
  if (r != 1 || c != 'w') printf("  the first read: %zd %c\n", r, c);
}

static void on_alarm(int sig) { (void)sig; }

static void read_now(const char* what, int fd) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;  // no SA_RESTART: a read that waited ends with EINTR
  sigaction(SIGALRM, &sa, NULL);
  alarm(2);
  char c;
  errno = 0;
  const ssize_t r = read(fd, &c, 1);
  const int e = errno;
  alarm(0);
  printf("%s: read %zd, %s\n", what, r, r < 0 ? strerrorname_np(e) : "data");
}

static void reap(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    printf("  child %d ended badly (status %d)\n", (int)pid, status);
}

static int set_nonblocking(int fd) { return (int)syscall(SYS_fcntl, fd, F_SETFL, O_RDWR | O_NONBLOCK); }

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "set-nonblocking") == 0) return set_nonblocking(atoi(argv[2])) == 0 ? 0 : 1;
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct pair p;

  make_pair(&p);
  read_waits(&p);
  pid_t pid = fork();
  if (pid == 0) _exit(set_nonblocking(p.server) == 0 ? 0 : 1);
  reap(pid);
  read_now("made non-blocking by a forked child", p.server);
  close_pair(&p);

  make_pair(&p);
  read_waits(&p);
  char fd_text[16];
  snprintf(fd_text, sizeof fd_text, "%d", p.server);
  char* child_argv[] = {argv[0], "set-nonblocking", fd_text, NULL};
  if (posix_spawn(&pid, argv[0], NULL, NULL, child_argv, environ) != 0) {
    perror("posix_spawn");
    return 1;
  }
  reap(pid);
  read_now("made non-blocking by a program started with posix_spawn", p.server);
  close_pair(&p);

  // The child exists before the socket: it gets it only by SCM_RIGHTS.
  int u[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, u) != 0) return 1;
  pid = fork();
  if (pid == 0) {
    char byte;
    struct iovec io = {&byte, 1};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    int ok = recvmsg(u[1], &m, 0) == 1 && CMSG_FIRSTHDR(&m) != NULL;
    int fd = -1;
    if (ok) memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
    ok = ok && set_nonblocking(fd) == 0;
    const char ack = ok ? 'y' : 'n';
    if (write(u[1], &ack, 1) != 1) ok = 0;
    _exit(ok ? 0 : 1);
  }
  make_pair(&p);
  read_waits(&p);
  {
    char byte = 'f';
    struct iovec io = {&byte, 1};
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p.server, sizeof(int));
    if (sendmsg(u[0], &m, 0) != 1) perror("sendmsg");
    char ack = 0;
    if (read(u[0], &ack, 1) != 1 || ack != 'y') printf("  the receiver failed\n");
  }
  reap(pid);
  read_now("made non-blocking by the process it was sent to", p.server);
  close_pair(&p);
  close(u[0]);
  close(u[1]);

  make_pair(&p);
  read_waits(&p);
  const int d = dup(p.server);
  set_nonblocking(d);
  read_now("made non-blocking through a dup", p.server);
  close(d);
  close_pair(&p);
  return 0;
}
