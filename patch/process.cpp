// Hooks of the "process" group: waits for child processes (waitpid, wait, wait3, wait4,
// waitid); system and popen/pclose, which wait through them, are in shell.cpp.
//
// On a fiber a wait first asks the kernel without waiting (the real call with WNOHANG, so
// ECHILD, EINVAL and every status come from the kernel exactly as natively), and if no child
// has changed state yet it parks the fiber, then asks again. Nothing of ours is installed
// for SIGCHLD and only the child the program asked about is ever reaped.
//  - One child (waitpid(pid > 0), waitid(P_PID / P_PIDFD)) waiting for its exit: a pidfd
//    (Linux >= 5.3) polled on the reactor, with a re-check every second as a safety net.
//  - Any child (-1, 0, -pgid, P_ALL, P_PGID), stops and continues (WUNTRACED, WSTOPPED,
//    WCONTINUED: a pidfd reports only the exit), or no pidfd (older kernels): a watcher, an
//    OS thread of ours blocked in waitid(..., WNOWAIT) on the same selection, which reaps
//    nothing and writes an eventfd the fiber polls; cancelled and joined when the wait ends.
//  - No watcher either (no thread or descriptor to be had, __WNOTHREAD): a bounded poll,
//    re-asking after 1 ms, 2 ms, 4 ms... up to 50 ms apart.
// Off a fiber, with WNOHANG, or with the group off: the real call.
#include <signal.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <new>

#include "internal/sys.hpp"
#include "state.hpp"
#include "process.hpp"
#include "thread/cancel.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace ringlet::patch::detail {

namespace {

using ringlet::Deadline;

constexpr std::int64_t kFirstPollNs = 1'000'000;     // the bounded poll starts at 1 ms
constexpr std::int64_t kLastPollNs = 50'000'000;     // and backs off to 50 ms
constexpr std::int64_t kPidfdRecheckNs = 1'000'000'000;  // a pidfd wait re-asks each second

// What a wait is for.
struct Target {
  enum Kind { Any, Pid, Pidfd } kind = Any;
  long id = 0;           // the pid, or the program's pidfd
  bool stops = false;    // WUNTRACED / WSTOPPED / WCONTINUED: a pidfd does not tell these
  // The same selection as a waitid that only looks (WNOWAIT), for a watcher thread; not
  // with __WNOTHREAD (the watcher has no children of its own).
  bool watcher_ok = false;
  idtype_t idtype = P_ALL;
  id_t wid = 0;
  int wopts = 0;
};

// A watcher: an OS thread of ours blocked in waitid(..., WNOWAIT) for the wait's selection,
// which reaps nothing and only writes an eventfd the fiber polls when a child may be
// reported. For the waits a pidfd cannot serve (any child, stops). Joined by its Watch
// (cancelled first if still waiting: waitid is a cancellation point).
struct Watcher {
  pthread_t thread{};
  int efd = -1;
  idtype_t idtype = P_ALL;
  id_t id = 0;
  int options = 0;
  std::atomic<int> result{0};  // 0: waiting; 1: a child to report; -1: waitid failed
};

void* watcher_main(void* arg) {  // not noexcept: a cancellation unwinds through it
  auto* w = static_cast<Watcher*>(arg);
  siginfo_t si;
  int r;
  do {
    si.si_pid = 0;
    r = RINGLET_REAL(waitid)(w->idtype, w->id, &si, w->options);
  } while (r == -1 && errno == EINTR);
  w->result.store(r == 0 ? 1 : -1, std::memory_order_release);
  const std::uint64_t one = 1;
  (void)!ringlet::detail::sys::write(w->efd, &one, sizeof one);
  return nullptr;
}

// A watcher for t, or null if none can be had (no thread, no descriptor): then the caller
// polls.
Watcher* start_watcher(const Target& t) noexcept {
  auto* w = new (std::nothrow) Watcher;
  if (!w) return nullptr;
  w->efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->efd < 0) {
    delete w;
    return nullptr;
  }
  w->idtype = t.idtype;
  w->id = t.wid;
  w->options = t.wopts;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  // Every signal blocked in it: the program's signals stay the carrier's.
  sigset_t all, old;
  sigfillset(&all);
  RINGLET_REAL(pthread_sigmask)(SIG_SETMASK, &all, &old);
  const int e = RINGLET_REAL(pthread_create)(&w->thread, &attr, &watcher_main, w);
  RINGLET_REAL(pthread_sigmask)(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    close_own(w->efd);
    delete w;
    return nullptr;
  }
  return w;
}

void stop_watcher(Watcher* w) noexcept {
  if (!w) return;
  if (w->result.load(std::memory_order_acquire) == 0) RINGLET_REAL(pthread_cancel)(w->thread);
  RINGLET_REAL(pthread_join)(w->thread, nullptr);  // at once: it ended, or is cancelled in waitid
  close_own(w->efd);
  delete w;
}

// The pidfd a wait polls, opened on first need and closed at the end.
class Watch {
 public:
  explicit Watch(const Target& t) noexcept : t_(t) {
    if (t.kind == Target::Pidfd) fd_ = static_cast<int>(t.id);
  }
  ~Watch() {
    if (own_) close_own(fd_);
    stop_watcher(watcher_);
  }
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // True if a pidfd was opened just now: the caller asks the kernel once more before it
  // waits (the child may have exited, or been reaped, before the pidfd existed).
  bool open_if_useful() noexcept {
    if (tried_ || t_.kind != Target::Pid || t_.stops) return false;
    tried_ = true;
    const long fd = ::syscall(SYS_pidfd_open, static_cast<pid_t>(t_.id), 0);
    if (fd < 0) return false;  // ENOSYS (before 5.3), EMFILE, ESRCH: the bounded poll
    fd_ = static_cast<int>(fd);
    own_ = true;
    return true;
  }

  // Wait until the child may have changed state, or the next re-check.
  IoOutcome wait(Here h) noexcept {
    if (deaf_) {  // killed, but the child must still be reaped: only the deadline ends it
      ringlet::detail::Waiter waiter;
      waiter.arm();
      ringlet::detail::WaitSpec spec;
      spec.what = "wait for a child (patched; killed, reaping it first)";
      spec.deadline = deadline_after_ns(next_backoff());
      spec.interruptible = false;
      return {0, ringlet::detail::wait(waiter, spec)};
    }
    if (polls_pidfd()) {
      const pollfd p{fd_, POLLIN, 0};
      return wait_fds(h, &p, 1, deadline_after_ns(kPidfdRecheckNs));
    }
    if (t_.watcher_ok && fruitless_ < 3) {
      if (!watcher_ && !(watcher_ = start_watcher(t_))) t_.watcher_ok = false;
      if (watcher_) {
        const pollfd p{watcher_->efd, POLLIN, 0};
        return wait_fds(h, &p, 1, deadline_after_ns(kPidfdRecheckNs));
      }
    }
    return {0, timed_sleep(h, deadline_after_ns(next_backoff()))};
  }

  // After a wake with nothing to report: a watcher that has answered is done with (a new
  // one watches next time); one whose waitid failed, or that keeps answering for nothing,
  // is given up for the bounded poll.
  void nothing_to_report() noexcept {
    if (!watcher_) return;
    const int r = watcher_->result.load(std::memory_order_acquire);
    if (r == 0) return;
    if (r < 0) t_.watcher_ok = false;
    else ++fruitless_;
    stop_watcher(watcher_);
    watcher_ = nullptr;
  }

  // The pidfd said "exited" but the kernel had nothing to report (not expected: the
  // pidfd is woken under the same lock that makes the zombie; a ptrace quirk, say), or its
  // poll failed: wait another way from now on rather than spin on a readable pidfd. With
  // stops asked for the pidfd is never polled: it may stay readable (a zombie the wait does
  // not take) while the wait goes on.
  void readable_for_nothing() noexcept { stale_ = true; }
  // From now on wait with sleeps that neither a kill nor a Timeout ends (a pending kill
  // would end every later wait at once).
  void deafen() noexcept { deaf_ = true; }
  bool polls_pidfd() const noexcept { return fd_ >= 0 && !stale_ && !t_.stops; }

 private:
  std::int64_t next_backoff() noexcept {
    const std::int64_t ns = backoff_;
    backoff_ = backoff_ * 2 > kLastPollNs ? kLastPollNs : backoff_ * 2;
    return ns;
  }

  Target t_;
  int fd_ = -1;
  bool own_ = false;
  bool tried_ = false;
  bool stale_ = false;
  bool deaf_ = false;
  std::int64_t backoff_ = kFirstPollNs;
  Watcher* watcher_ = nullptr;
  int fruitless_ = 0;
};

// The shared loop: ask() is the real call with WNOHANG (1: a child to report, 0: none yet,
// -1: failed, errno set). A signal handler without SA_RESTART ends the wait with EINTR, as
// the kernel ends a blocking wait; with SA_RESTART the wait goes on (the kernel restarts
// it). A kill ends it with EINTR, an enclosing Timeout with ETIMEDOUT.
//
// to_the_end (system, pclose: glibc's own loops retry on EINTR): signals never end the
// wait, and a kill or a Timeout does not either, as the kill stays pending for the next
// switch point; the child is reaped first.
template <class Ask>
int park_until_changed(Here h, const Target& t, Call c, Ask ask, bool to_the_end = false) noexcept {
  const SignalCounts at = thread_signals();
  Watch w(t);
  for (;;) {
    const int r = ask();
    if (r != 0) return r;
    if (w.open_if_useful()) continue;
    const bool pidfd = w.polls_pidfd();
    const IoOutcome o = w.wait(h);
    count_waited(c);
    switch (o.why) {
      case Woke::Notified:
        if (pidfd) {
          // Readable: the child has exited.
          // An error from the poll: poll instead from now on.
          if (o.res >= 0) {
            const int again = ask();
            if (again != 0) return again;
          }
          w.readable_for_nothing();
        } else {
          w.nothing_to_report();
        }
        continue;
      case Woke::Deadline:
        continue;
      case Woke::Interrupted: {
        if (to_the_end || thread_signals().no_restart == at.no_restart) continue;  // SA_RESTART, or no signal
        // The kernel looks for a child to report before it looks at signals: the SIGCHLD of
        // the very exit waited for ends the wait with that child, not EINTR.
        const int again = ask();
        if (again != 0) return again;
        errno = EINTR;
        return -1;
      }
      case Woke::Deadlock:  // cannot be: every wait here has a deadline; poll on
        continue;
      default:
        if (to_the_end) {
          w.deafen();
          continue;
        }
        errno = woke_errno(o.why);
        return -1;
    }
  }
}

Target target_of_pid(pid_t pid, int options) noexcept {
  Target t;
  t.kind = pid > 0 ? Target::Pid : Target::Any;
  t.id = pid;
  t.stops = options & (WUNTRACED | WCONTINUED);
  // wait4's selection as waitid's: pid, any, a group, the caller's group.
  t.watcher_ok = !(options & __WNOTHREAD);
  t.idtype = pid > 0 ? P_PID : pid == -1 ? P_ALL : P_PGID;
  t.wid = static_cast<id_t>(pid > 0 ? pid : pid < -1 ? -pid : pid == 0 ? ::getpgrp() : 0);
  t.wopts = WEXITED | WNOWAIT | ((options & WUNTRACED) ? WSTOPPED : 0) | (options & (WCONTINUED | __WALL | __WCLONE));
  return t;
}

// wait4 on a fiber, parked (options without WNOHANG).
pid_t park_wait4(Here h, pid_t pid, int* status, int options, rusage* ru, Call c,
                 bool to_the_end = false) noexcept {
  auto real = RINGLET_REAL(wait4);
  pid_t got = 0;
  const int r = park_until_changed(h, target_of_pid(pid, options), c, [&]() noexcept {
    got = real(pid, status, options | WNOHANG, ru);
    return got < 0 ? -1 : got > 0 ? 1 : 0;
  }, to_the_end);
  return r < 0 ? -1 : got;
}

RINGLET_SLOW pid_t do_wait4(pid_t pid, int* status, int options, rusage* ru, Call c) noexcept {
  Here h = on_fiber(Process);
  // In a signal handler (a SIGCHLD handler reaping) the call is the real one: parking there
  // would switch fibers under the interrupted code.
  if (!h || (options & WNOHANG) || in_signal_handler()) {
    count_passed(c);
    return RINGLET_REAL(wait4)(pid, status, options, ru);
  }
  count_on_fiber(c);
  return park_wait4(h, pid, status, options, ru, c);
}


}  // namespace

// process.hpp
pid_t wait_child_retrying(pid_t pid, int* status) noexcept {
  pid_t r;
  do {
    Here h = on_fiber(Process);
    r = h ? park_wait4(h, pid, status, 0, nullptr, Call::waitpid, true) : RINGLET_REAL(waitpid)(pid, status, 0);
  } while (r == -1 && errno == EINTR);
  return r;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Process;

static pid_t cancel_point_waitpid(pid_t pid, int* status, int options) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(waitpid, waitpid, pid, status, options);
  return do_wait4(pid, status, options, nullptr, Call::waitpid);
}

RINGLET_HOOK pid_t waitpid(pid_t pid, int* status, int options) {
  return RINGLET_CANCEL_POINT(cancel_point_waitpid(pid, status, options));
}

static pid_t cancel_point_wait(int* status) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(waitpid, wait, status);
  return do_wait4(-1, status, 0, nullptr, Call::waitpid);
}

RINGLET_HOOK pid_t wait(int* status) {
  return RINGLET_CANCEL_POINT(cancel_point_wait(status));
}

static pid_t cancel_point_wait3(int* status, int options, struct rusage* ru) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(wait4, wait3, status, options, ru);
  return do_wait4(-1, status, options, ru, Call::wait4);
}

RINGLET_HOOK pid_t wait3(int* status, int options, struct rusage* ru) {
  return RINGLET_CANCEL_POINT(cancel_point_wait3(status, options, ru));
}

static pid_t cancel_point_wait4(pid_t pid, int* status, int options, struct rusage* ru) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(wait4, wait4, pid, status, options, ru);
  return do_wait4(pid, status, options, ru, Call::wait4);
}

RINGLET_HOOK pid_t wait4(pid_t pid, int* status, int options, struct rusage* ru) {
  return RINGLET_CANCEL_POINT(cancel_point_wait4(pid, status, options, ru));
}

static int cancel_point_waitid(idtype_t idtype, id_t id, siginfo_t* info, int options) noexcept {
  RINGLET_PASS_IF_PLAIN_THREAD(waitid, waitid, idtype, id, info, options);
  auto real = RINGLET_REAL(waitid);
  Here h = on_fiber(Process);
  if (!h || (options & WNOHANG) || in_signal_handler()) {
    count_passed(Call::waitid);
    return real(idtype, id, info, options);
  }
  count_on_fiber(Call::waitid);
  Target t;
  t.kind = idtype == P_PID ? Target::Pid : static_cast<int>(idtype) == P_PIDFD ? Target::Pidfd : Target::Any;
  t.id = static_cast<long>(id);
  t.stops = options & (WSTOPPED | WCONTINUED);
  t.watcher_ok = !(options & __WNOTHREAD);
  t.idtype = idtype;
  t.wid = id;
  t.wopts = options | WNOWAIT;
  // With WNOHANG, "nothing yet" is si_pid == 0; the kernel needs somewhere to say it even
  // when the caller passed no siginfo.
  siginfo_t local;
  siginfo_t* si = info ? info : &local;
  const int r = park_until_changed(h, t, Call::waitid, [&]() noexcept {
    si->si_pid = 0;
    if (real(idtype, id, si, options | WNOHANG) != 0) return -1;
    return si->si_pid != 0 ? 1 : 0;
  });
  return r < 0 ? -1 : 0;
}

RINGLET_HOOK int waitid(idtype_t idtype, id_t id, siginfo_t* info, int options) {
  return RINGLET_CANCEL_POINT(cancel_point_waitid(idtype, id, info, options));
}
