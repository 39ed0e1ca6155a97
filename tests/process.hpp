// Example programs run as child processes, the way a user runs them. The binaries' folder
// comes from RINGLET_EXAMPLES (set by meson); the engine the suite runs on (RINGLET_BACKEND)
// is inherited by them.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "helpers.hpp"

extern char** environ;

namespace ringlet::test {

using namespace std::chrono_literals;

inline std::string examples_dir() {
  const char* d = std::getenv("RINGLET_EXAMPLES");
  return d ? d : "examples";
}

// A child process (an example, or an absolute path) with its stdout and stderr on pipes.
class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    if (args[0].find('/') == std::string::npos) args[0] = examples_dir() + "/" + args[0];
    int out[2], err[2];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(pipe2(err, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // SIGINT and SIGQUIT at their defaults, as a program started from a terminal has them,
    // even when the suite runs as a background job of a shell without job control (which
    // starts it with both ignored, an ignorance the child would inherit).
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGQUIT);
    posix_spawnattr_setsigdefault(&sa, &def);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF);
    REQUIRE(posix_spawn(&pid_, argv[0], &fa, &sa, argv.data(), environ) == 0);
    posix_spawnattr_destroy(&sa);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }

  // The next line of stdout, waiting at most `limit`.
  std::string line(std::chrono::milliseconds limit = 5000ms) {
    auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto nl = out_text_.find('\n', consumed_); nl != std::string::npos) {
        std::string l = out_text_.substr(consumed_, nl - consumed_);
        consumed_ = nl + 1;
        return l;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left <= 0ms || !pump(static_cast<int>(left.count()))) return {};
    }
  }

  // Wait for the exit (at most `limit`), collecting all output. Returns the exit status, or
  // -1 if it had to be killed.
  int wait(std::chrono::milliseconds limit = 30000ms) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (!pump(static_cast<int>(std::max<long>(1, left.count())))) break;  // both pipes closed
    }
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid_, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < until)
      usleep(1000);  // the pipes close a moment before the exit status is there
    if (r == 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = 0;
      return -1;
    }
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // Wait (at most `limit`) until stderr contains `needle`.
  bool wait_for_err(const std::string& needle, std::chrono::milliseconds limit = 10000ms) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (err_text_.find(needle) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left <= 0ms || !pump(static_cast<int>(left.count()))) return err_text_.find(needle) != std::string::npos;
    }
    return true;
  }

  void signal(int sig) { ::kill(pid_, sig); }
  const std::string& out() const { return out_text_; }
  const std::string& err() const { return err_text_; }

 private:
  // Read what is there within ms; false once both pipes are at end of file.
  bool pump(int ms) {
    pollfd p[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    int live = (out_open_ ? 1 : 0) + (err_open_ ? 1 : 0);
    if (!live) return false;
    if (!out_open_) p[0].fd = -1;
    if (!err_open_) p[1].fd = -1;
    if (::poll(p, 2, ms) <= 0) return true;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n <= 0) (i == 0 ? out_open_ : err_open_) = false;
      else (i == 0 ? out_text_ : err_text_).append(buf, static_cast<std::size_t>(n));
    }
    return out_open_ || err_open_;
  }

  pid_t pid_ = 0;
  int out_ = -1, err_ = -1;
  bool out_open_ = true, err_open_ = true;
  std::string out_text_, err_text_;
  std::size_t consumed_ = 0;
};

}  // namespace ringlet::test
