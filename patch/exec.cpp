// The exec calls: execve, execv, execvp, execvpe, execl, execle, execlp, fexecve, execveat
// (and syscall(SYS_execve / SYS_execveat), in thread/futex.cpp's syscall hook).
//
// What they add to glibc's: the blocking monitor (RINGLET_MAX_BLOCKING_MS) stops signalling
// the calling thread first. Inside execve the thread still holds its scheduler while the
// kernel copies the arguments and ends the process's other threads (the monitor's last), a
// millisecond or more, long enough for the monitor to sample it; the kernel keeps a signal
// pending on that thread across execve and resets its handler to the default, so the new
// image would start by ending with SIGRTMAX-1. If the exec fails, the thread is watched again and errno is the
// exec's. glibc's own execl* build an argument vector and call execve internally, past any
// interposer, so each is its own hook here, building the vector as glibc does.
#include <errno.h>
#include <unistd.h>

#include <climits>
#include <cstdarg>
#include <cstddef>

#include "internal/scheduler.hpp"
#include "state.hpp"

namespace {

template <class Call>
int guarded(Call call) noexcept {
  ringlet::detail::monitor_before_exec();
  const int r = call();
  const int e = errno;
  ringlet::detail::monitor_after_failed_exec();
  errno = e;
  return r;
}

// execl, execlp, execle: the argument vector built on this stack, as glibc's own does (a
// variable-length array), from `first` up to the terminating null pointer (E2BIG past
// INT_MAX, as glibc); then call(argv, envp), envp read past that null pointer when
// `with_env` (execle), else null.
template <class Call>
int exec_list(const char* first, va_list ap, bool with_env, Call call) noexcept {
  std::ptrdiff_t n = 0;
  if (first) {
    va_list count;
    va_copy(count, ap);
    for (n = 1; va_arg(count, const char*) != nullptr; ++n) {
    }
    va_end(count);
  }
  if (n >= INT_MAX) {
    errno = E2BIG;
    return -1;
  }
  char* argv[n + 1];
  argv[0] = const_cast<char*>(first);
  for (std::ptrdiff_t i = 1; i <= n; ++i) argv[i] = va_arg(ap, char*);
  char* const* envp = with_env ? va_arg(ap, char* const*) : nullptr;
  return call(argv, envp);
}

}  // namespace

RINGLET_HOOK int execve(const char* path, char* const argv[], char* const envp[]) {
  return guarded([&] { return RINGLET_REAL(execve)(path, argv, envp); });
}

RINGLET_HOOK int execv(const char* path, char* const argv[]) {
  return guarded([&] { return RINGLET_REAL(execv)(path, argv); });
}

RINGLET_HOOK int execvp(const char* file, char* const argv[]) {
  return guarded([&] { return RINGLET_REAL(execvp)(file, argv); });
}

RINGLET_HOOK int execvpe(const char* file, char* const argv[], char* const envp[]) {
  return guarded([&] { return RINGLET_REAL(execvpe)(file, argv, envp); });
}

RINGLET_HOOK int fexecve(int fd, char* const argv[], char* const envp[]) {
  return guarded([&] { return RINGLET_REAL(fexecve)(fd, argv, envp); });
}

RINGLET_HOOK int execveat(int dirfd, const char* path, char* const argv[], char* const envp[], int flags) {
  return guarded([&] { return RINGLET_REAL(execveat)(dirfd, path, argv, envp, flags); });
}

RINGLET_HOOK int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  const int r = exec_list(arg, ap, false, [&](char* const* argv, char* const*) { return execv(path, argv); });
  va_end(ap);
  return r;
}

RINGLET_HOOK int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  const int r = exec_list(arg, ap, false, [&](char* const* argv, char* const*) { return execvp(file, argv); });
  va_end(ap);
  return r;
}

RINGLET_HOOK int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  const int r = exec_list(arg, ap, true, [&](char* const* argv, char* const* envp) { return execve(path, argv, envp); });
  va_end(ap);
  return r;
}
