// What the tests of unmodified programs under ringlet-run share: running a program with its
// output captured (natively, or patched through RINGLET_RUN), reading --stats, and the skips
// for a missing tool or a sanitizer build.
#pragma once

#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "helpers.hpp"

namespace ringlet::test {

inline std::string env_or_skip(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

struct Run {
  int status = -1;
  std::string out, err;
  int code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
};

// In a forked child: stdout and stderr to the given descriptors, the extra environment,
// then argv (127 if it cannot be run).
[[noreturn]] inline void exec_child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
                             int out, int err, int close_fd) {
  dup2(out, 1);
  dup2(err, 2);
  close(close_fd);
  for (const auto& e : extra_env) putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

// Runs argv with extra environment entries; stdout and stderr captured through files.
// If `on_line` is given, it is called with each stdout line as it arrives (with the pid).
template <class OnLine>
Run run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, OnLine on_line) {
  char out_path[] = "/tmp/ringlet-patch-out-XXXXXX";
  char err_path[] = "/tmp/ringlet-patch-err-XXXXXX";
  int err_fd = mkstemp(err_path);
  int out_fd = mkstemp(out_path);
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) exec_child(argv, extra_env, pipe_fds[1], err_fd, pipe_fds[0]);
  close(pipe_fds[1]);
  Run r;
  std::string pending;
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) {
    r.out.append(buf, static_cast<size_t>(n));
    pending.append(buf, static_cast<size_t>(n));
    for (std::size_t k; (k = pending.find('\n')) != std::string::npos;) {
      on_line(pending.substr(0, k), pid);
      pending.erase(0, k + 1);
    }
  }
  close(pipe_fds[0]);
  waitpid(pid, &r.status, 0);
  std::string err;
  lseek(err_fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(err_fd, buf, sizeof buf)) > 0;) r.err.append(buf, static_cast<size_t>(n));
  close(err_fd);
  close(out_fd);
  unlink(err_path);
  unlink(out_path);
  return r;
}

inline Run run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {}) {
  return run(argv, extra_env, [](const std::string&, pid_t) {});
}

inline std::vector<std::string> patched(const std::vector<std::string>& argv, bool stats = true) {
  std::vector<std::string> v{env_or_skip("RINGLET_RUN")};
  if (stats) v.push_back("--stats");
  v.push_back("--");
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

// The carriers a patched program gets from the RINGLET_THREADS this test inherits (the meson
// test setups set it: 1 by default, 2 under two_carriers); unset or 0: one per CPU of the
// affinity mask, as ringlet-run's default.
inline unsigned inherited_carriers() {
  const char* v = std::getenv("RINGLET_THREADS");
  const unsigned long n = v && *v ? std::strtoul(v, nullptr, 10) : 0;
  if (n > 0) return static_cast<unsigned>(n);
  cpu_set_t set;
  CPU_ZERO(&set);
  return sched_getaffinity(0, sizeof set, &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : 1;
}

// The carrier a program's first thread runs on: main's is 0 and counts as one live thread
// there, so with two carriers or more the first thread goes to 1 (a creator's first thread
// goes where the fewest live: patch/thread/placement.cpp).
inline unsigned first_thread_carrier() { return inherited_carriers() > 1 ? 1 : 0; }

// From a --stats report: the "on a fiber" and "waited" columns of one call (0 if absent).
inline std::pair<unsigned long, unsigned long> stat_of(const std::string& err, const std::string& call) {
  std::istringstream in(err);
  std::string line;
  std::pair<unsigned long, unsigned long> best{0, 0};
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string a, b, name;
    unsigned long f = 0, w = 0, p = 0;
    if (!(ls >> a >> b >> name >> f >> w >> p)) continue;
    if (a == "ringlet" && name == call) best = {std::max(best.first, f), std::max(best.second, w)};
  }
  return best;
}

inline std::string python() {
  // The interpreter itself, not a pyenv shim script (which would run under the patch too).
  Run r = run({"python3", "-c", "import sys; print(sys.executable)"});
  std::string p = r.out;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  return p;
}

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

#define REQUIRE_TOOL(path, what)                                                               \
  do {                                                                                         \
    if (ringlet::test::kSanitized)                                                             \
      RINGLET_SKIP("a sanitizer-built patch library cannot be preloaded into other programs"); \
    if ((path).empty()) RINGLET_SKIP(std::string(what) + " not set (run through meson test)"); \
  } while (0)

}  // namespace ringlet::test
