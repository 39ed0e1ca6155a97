// pause() and sigsuspend() on the fibers of a ringlet program linked with the patch, where
// the runtime's deadlock breaker is on (ringlet-run turns it off): every fiber waits for a
// signal that a child process sends after 1 s. A wait for a signal can always be ended from
// outside, so it is not a deadlock: no report, and each call returns -1/EINTR after its
// handler ran, as natively. Exit 0 if so.
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "ringlet/ringlet.hpp"

static volatile sig_atomic_t handled;
static void on_usr1(int) { handled = handled + 1; }

static double now_s() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

static bool one(const char* what, bool suspend) {
  handled = 0;
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    timespec t{1, 0};
    nanosleep(&t, nullptr);
    kill(parent, SIGUSR1);
    _exit(0);
  }
  int r = 0, e = 0;
  const double start = now_s();
  try {
    ringlet::run([&] {
      // On a fiber of its own, while run's body waits in the join: every fiber parked,
      // nothing else in flight but the wait's own poll.
      ringlet::spawn([&] {
        if (suspend) {
          sigset_t none;
          sigemptyset(&none);
          r = sigsuspend(&none);
        } else {
          r = pause();
        }
        e = errno;
      }).get();
    });
  } catch (const std::exception& ex) {
    std::printf("%s: ringlet::run threw: %s\n", what, ex.what());
    r = 0;
  }
  const double took = now_s() - start;
  waitpid(child, nullptr, 0);
  const bool ok = r == -1 && e == EINTR && handled == 1 && took >= 0.9;
  std::printf("%s: %d %s, handler ran %d time(s), after %s: %s\n", what, r, e == EINTR ? "EINTR" : std::strerror(e),
              static_cast<int>(handled), took >= 0.9 ? "the signal" : "less than the signal's 1 s",
              ok ? "ok" : "WRONG");
  return ok;
}

int main() {
  alarm(60);
  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, nullptr);
  bool ok = one("pause on a fiber", false);
  sigset_t u;
  sigemptyset(&u);
  sigaddset(&u, SIGUSR1);
  sigprocmask(SIG_BLOCK, &u, nullptr);  // sigsuspend's classic shape: blocked, then let through
  ok = one("sigsuspend on a fiber", true) && ok;
  return ok ? 0 : 1;
}
