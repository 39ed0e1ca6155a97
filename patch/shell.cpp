// system and popen/pclose of the "process" group, rebuilt on posix_spawn (as glibc builds
// them) so that their waits are process.cpp's parked ones; popen's stream is fdopen's, so
// reading it parks as any pipe's FILE does.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <new>
#include <vector>

#include "process.hpp"
#include "state.hpp"
#include "stdio/stdio.hpp"

extern char** environ;

namespace ringlet::patch::detail {

int wrapped_sigaction(int sig, const struct sigaction* act, struct sigaction* old);

namespace {

// --- system ------------------------------------------------------------------------------

// SIGINT and SIGQUIT are ignored in the process while any system() waits; the first caller
// sets that up and the last one puts the program's dispositions back (glibc's scheme).
std::mutex g_system_mu;
int g_system_refs = 0;
struct sigaction g_intr, g_quit;

int do_system(const char* line) noexcept {
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  struct sigaction intr {}, quit {};
  {
    std::lock_guard<std::mutex> lock(g_system_mu);
    if (g_system_refs++ == 0) {
      wrapped_sigaction(SIGINT, &ign, &g_intr);
      wrapped_sigaction(SIGQUIT, &ign, &g_quit);
    }
    intr = g_intr;
    quit = g_quit;
  }
  // SIGCHLD blocked while it waits, as glibc does (through the patch's own sigprocmask: a
  // fiber thread's mask is its own).
  sigset_t chld, omask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, &omask);

  sigset_t reset;
  sigemptyset(&reset);
  if (intr.sa_handler != SIG_IGN) sigaddset(&reset, SIGINT);
  if (quit.sa_handler != SIG_IGN) sigaddset(&reset, SIGQUIT);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setsigmask(&attr, &omask);
  posix_spawnattr_setsigdefault(&attr, &reset);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  char sh[] = "sh", dash_c[] = "-c";
  char* const argv[] = {sh, dash_c, const_cast<char*>(line), nullptr};
  pid_t pid = -1;
  int status;
  if (::posix_spawn(&pid, "/bin/sh", nullptr, &attr, argv, environ) == 0) {
    if (wait_child_retrying(pid, &status) != pid) status = -1;
  } else {
    status = W_EXITCODE(127, 0);  // POSIX: as if the shell had exited with 127
  }
  posix_spawnattr_destroy(&attr);

  {
    std::lock_guard<std::mutex> lock(g_system_mu);
    if (--g_system_refs == 0) {
      wrapped_sigaction(SIGINT, &g_intr, nullptr);
      wrapped_sigaction(SIGQUIT, &g_quit, nullptr);
    }
  }
  ::sigprocmask(SIG_SETMASK, &omask, nullptr);
  return status;
}

// --- popen / pclose ----------------------------------------------------------------------

// The streams popen made and not yet pclosed: the FILE, its descriptor (kept apart: a
// stream wrongly fclosed must not be read again) and the child.
struct Proc {
  FILE* f;
  int fd;
  pid_t pid;
};
std::mutex g_procs_mu;
std::vector<Proc>* g_procs = nullptr;  // made on first popen, never freed (exit order)
std::atomic<int> g_procs_live{0};

FILE* do_popen(const char* command, const char* mode) noexcept {
  bool rd = false, wr = false, cloexec = false;
  for (const char* m = mode; *m; ++m) {
    switch (*m) {
      case 'r': rd = true; break;
      case 'w': wr = true; break;
      case 'e': cloexec = true; break;
      default: errno = EINVAL; return nullptr;
    }
  }
  if (rd == wr) {
    errno = EINVAL;
    return nullptr;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return nullptr;
  const int parent_end = rd ? 0 : 1, child_end = rd ? 1 : 0;
  const int child_fd = rd ? 1 : 0;  // the child's stdout, or its stdin
  auto fail = [&](int e) -> FILE* {
    close_own(fds[0]);
    close_own(fds[1]);
    errno = e;
    return nullptr;
  };
  if (fds[child_end] == child_fd) {
    // Already the child's number: dup2 onto itself would leave it close-on-exec.
    const int tmp = ::fcntl(child_fd, F_DUPFD_CLOEXEC, 0);
    if (tmp < 0) return fail(errno);
    close_own(fds[child_end]);
    fds[child_end] = tmp;
  }
  FILE* f = ::fdopen(fds[parent_end], rd ? "r" : "w");
  if (!f) return fail(errno);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  bool ok = posix_spawn_file_actions_adddup2(&fa, fds[child_end], child_fd) == 0;
  pid_t pid = -1;
  {
    std::lock_guard<std::mutex> lock(g_procs_mu);
    try {
      if (!g_procs) g_procs = new std::vector<Proc>();
      g_procs->reserve(g_procs->size() + 1);
    } catch (...) {
      ok = false;
    }
    // POSIX: streams of earlier popen calls still open are closed in the new child.
    if (ok)
      for (const Proc& p : *g_procs)
        if (p.fd != child_fd && posix_spawn_file_actions_addclose(&fa, p.fd) != 0) ok = false;
    char sh[] = "sh", dash_c[] = "-c";
    char* const argv[] = {sh, dash_c, const_cast<char*>(command), nullptr};
    if (ok) ok = ::posix_spawn(&pid, "/bin/sh", &fa, nullptr, argv, environ) == 0;
    if (ok) {
      g_procs->push_back(Proc{f, fds[parent_end], pid});  // reserved: cannot throw
      g_procs_live.fetch_add(1, std::memory_order_relaxed);
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  if (!ok) {
    ::fclose(f);  // closes the parent's end
    close_own(fds[child_end]);
    errno = ENOMEM;  // what glibc's popen says for any failure to start the child
    return nullptr;
  }
  close_own(fds[child_end]);
  if (!cloexec) ::fcntl(fds[parent_end], F_SETFD, 0);
  return f;
}

// The popen record of f, taken out of the list; false if f is not one.
bool take_proc(FILE* f, Proc& out) noexcept {
  if (g_procs_live.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(g_procs_mu);
  if (!g_procs) return false;
  for (auto it = g_procs->begin(); it != g_procs->end(); ++it) {
    if (it->f == f) {
      out = *it;
      g_procs->erase(it);
      g_procs_live.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

}  // namespace

bool is_popen_stream(FILE* f) noexcept {
  if (g_procs_live.load(std::memory_order_relaxed) == 0) return false;
  std::lock_guard<std::mutex> lock(g_procs_mu);
  if (!g_procs) return false;
  for (const Proc& p : *g_procs)
    if (p.f == f) return true;
  return false;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Process;

static int system_hooked(const char* line) {
  Here h = on_fiber(Process);
  if (!h) {
    count_passed(Call::system);
    return RINGLET_REAL(system)(line);
  }
  count_on_fiber(Call::system);
  if (!line) return do_system("exit 0") == 0;  // is there a shell?
  return do_system(line);
}

static FILE* popen_hooked(const char* command, const char* mode) {
  Here h = on_fiber(Process);
  if (!h) {
    count_passed(Call::popen);
    return RINGLET_REAL(popen)(command, mode);
  }
  count_on_fiber(Call::popen);
  return do_popen(command, mode);
}

// glibc makes their children with its own posix_spawn, unseen by the hook: the epoch of
// descriptor sharing (state.hpp) moves here.
RINGLET_HOOK int system(const char* line) {
  fd_share_epoch_advance();
  const int r = system_hooked(line);
  fd_share_epoch_advance();
  return r;
}

RINGLET_HOOK FILE* popen(const char* command, const char* mode) {
  fd_share_epoch_advance();
  FILE* f = popen_hooked(command, mode);
  fd_share_epoch_advance();
  return f;
}

// A stream of our popen (from any thread): closed, then its child waited for (parked on a
// fiber). Anything else is glibc's pclose: its own popen streams, and any other FILE, which
// glibc's pclose closes as fclose does.
RINGLET_HOOK int pclose(FILE* f) {
  Proc p;
  if (!take_proc(f, p)) {
    count_passed(Call::pclose);
    return RINGLET_REAL(pclose)(f);
  }
  if (on_fiber(Process)) count_on_fiber(Call::pclose);
  const int closed = ::fclose(f);
  fd_forget(p.fd);  // closed inside libc, unseen by the close hook
  int status = 0;
  if (wait_child_retrying(p.pid, &status) == -1) return -1;
  // glibc: the child's status if not 0, else the close's own result.
  return status != 0 ? status : (closed != 0 ? -1 : 0);
}
