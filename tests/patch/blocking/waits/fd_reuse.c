// A descriptor a thread has waited on is closed behind the engine's back -- by fclose, by
// close_range, by dup2 over it, by closefrom, by a raw syscall(SYS_close) -- and its number is
// given to a new socket (by socketpair, or a raw dup3 where that picked a lower number); a thread's blocking read on the new socket must wake as soon as its
// peer writes, and read the new socket's byte (never the old file's, which a dup keeps alive
// and which is written to as well). Natively each wake is prompt; under ringlet-run the epoll
// engine keeps its registrations, so a stale one would show here as a late or wrong wake.
// The raw syscall is one close nobody can see: there a wake within 3 s is asked (the engine
// re-checks such waits after one to two seconds), elsewhere within 0.4 s.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct reader {
  int fd;
  char got;
  double waited;
  ssize_t r;
};

static void* read_one(void* arg) {
  struct reader* rd = arg;
  const double t0 = now_s();
  rd->r = read(rd->fd, &rd->got, 1);
  rd->waited = now_s() - t0;
  return NULL;
}

// A thread blocks reading fd; 50 ms later `byte` is written to peer. How long it waited.
static struct reader round_trip(int fd, int peer, char byte) {
  struct reader rd = {fd, 0, 0, 0};
  pthread_t t;
  pthread_create(&t, NULL, read_one, &rd);
  usleep(50 * 1000);
  if (write(peer, &byte, 1) != 1) perror("write");
  pthread_join(t, NULL);
  return rd;
}

static void pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    perror("socketpair");
    exit(1);
  }
}

enum how { FCLOSE, CLOSE_RANGE, DUP2, CLOSEFROM, RAW_SYSCALL };
static const char* const names[] = {"fclose", "close_range", "dup2 over it", "closefrom", "syscall(SYS_close)"};

static int check(enum how h) {
  int sv[2];
  pair(sv);
  // The waited number n is the highest, so closefrom(n) closes it alone; sv[0] keeps the old
  // file (and any registration of it) alive after n is closed; it gets written to later.
  const int n = fcntl(sv[0], F_DUPFD_CLOEXEC, sv[1] + 1);
  const int keep = sv[0];
  struct reader first = round_trip(n, sv[1], 'a');
  int ok = first.r == 1 && first.got == 'a';
  int nv[2];
  switch (h) {
    case FCLOSE: {
      FILE* f = fdopen(n, "r+");
      if (!f) { perror("fdopen"); return 0; }
      fclose(f);
      break;
    }
    case CLOSE_RANGE:
      if (syscall(SYS_close_range, n, n, 0) != 0) { perror("close_range"); return 0; }
      break;
    case CLOSEFROM:
      closefrom(n);
      break;
    case RAW_SYSCALL:
      syscall(SYS_close, n);
      break;
    case DUP2:
      break;
  }
  pair(nv);
  if (h == DUP2) {
    if (dup2(nv[0], n) != n) { perror("dup2"); return 0; }
  } else if (nv[0] != n) {  // the lowest free number is not n: put it there (unseen too)
    if (syscall(SYS_dup3, nv[0], n, O_CLOEXEC) != n) { perror("dup3"); return 0; }
  }
  if (nv[0] != n) close(nv[0]);
  // The old file becomes readable too: its event must not be taken for the new socket's.
  if (write(sv[1], "x", 1) != 1) perror("write old");
  struct reader second = round_trip(n, nv[1], 'b');
  const double limit = h == RAW_SYSCALL ? 3.0 : 0.4;
  ok = ok && second.r == 1 && second.got == 'b' && second.waited < limit;
  char old = 0;
  const int old_kept = read(keep, &old, 1) == 1 && old == 'x';
  printf("%s: the wait on the reused number woke %s with the new socket's byte: %s; the old file kept its own: %s\n",
         names[h], h == RAW_SYSCALL ? "within 3 s" : "at once", ok ? "yes" : "no", old_kept ? "yes" : "no");
  if (!ok)
    fprintf(stderr, "%s: read %zd, byte '%c', after %.3f s\n", names[h], second.r, second.got ? second.got : '?',
            second.waited);
  close(keep);
  close(n);
  close(nv[1]);
  close(sv[1]);
  return ok && old_kept;
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  int ok = 1;
  for (int h = FCLOSE; h <= RAW_SYSCALL; ++h) ok &= check((enum how)h);
  return ok ? 0 : 1;
}
