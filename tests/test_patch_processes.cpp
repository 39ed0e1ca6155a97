// Unmodified programs under ringlet-run (LD_PRELOAD=libringlet_patch.so): curl, python3
// scripts, a C program using poll. Each runs natively and patched in the same test; the
// output and exit status must be the same, and the patch's own counters (--stats) must show
// that the calls really went through the reactor.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "http_test_server.hpp"
#include "ringlet/net.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

std::string env_or_skip(const char* name) {
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
[[noreturn]] void exec_child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
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

Run run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {}) {
  return run(argv, extra_env, [](const std::string&, pid_t) {});
}

std::vector<std::string> patched(const std::vector<std::string>& argv, bool stats = true) {
  std::vector<std::string> v{env_or_skip("RINGLET_RUN")};
  if (stats) v.push_back("--stats");
  v.push_back("--");
  v.insert(v.end(), argv.begin(), argv.end());
  return v;
}

// The carriers a patched program gets from the RINGLET_THREADS this test inherits (the meson
// test setups set it: 1 by default, 2 under two_carriers); unset or 0: one per CPU of the
// affinity mask, as ringlet-run's default.
unsigned inherited_carriers() {
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
unsigned first_thread_carrier() { return inherited_carriers() > 1 ? 1 : 0; }

// From a --stats report: the "on a fiber" and "waited" columns of one call (0 if absent).
std::pair<unsigned long, unsigned long> stat_of(const std::string& err, const std::string& call) {
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

std::string python() {
  // The interpreter itself, not a pyenv shim script (which would run under the patch too).
  Run r = run({"python3", "-c", "import sys; print(sys.executable)"});
  std::string p = r.out;
  while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
  return p;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

#define REQUIRE_TOOL(path, what)                                                               \
  do {                                                                                         \
    if (kSanitized)                                                                            \
      RINGLET_SKIP("a sanitizer-built patch library cannot be preloaded into other programs"); \
    if ((path).empty()) RINGLET_SKIP(std::string(what) + " not set (run through meson test)"); \
  } while (0)

}  // namespace

TEST_CASE("ringlet-run: curl fetches a page exactly as it does unpatched", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  if (run({"curl", "--version"}).code() != 0) RINGLET_SKIP("curl is not installed");
  std::string page;
  for (int i = 0; i < 300'000; ++i) page += static_cast<char>('a' + i % 26);
  ringlet::test::HttpTestServer server{page, 100ms};  // late enough that curl has to wait
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/page";
  Run plain = run({"curl", "-sS", url});
  Run with = run(patched({"curl", "-sS", url}));
  CHECK(plain.code() == 0);
  CHECK(with.code() == plain.code());
  CHECK(plain.out == server.body());
  CHECK(with.out == plain.out);
  // curl waits in poll and reads with recv: on the main fiber, through the reactor.
  INFO(with.err);
  // (curl makes its sockets non-blocking itself, so its recv calls pass straight through.)
  CHECK(stat_of(with.err, "poll").second + stat_of(with.err, "ppoll").second > 0);
  // A refused connection: the same error and exit status.
  Run refused_plain = run({"curl", "-sS", "http://127.0.0.1:1/"});
  Run refused_with = run(patched({"curl", "-sS", "http://127.0.0.1:1/"}, false));
  CHECK(refused_plain.code() == 7);
  CHECK(refused_with.code() == refused_plain.code());
  // The same words; curl's "after N ms" is a timing, which a loaded machine moves by a
  // millisecond either way, so it is compared as a number within 50 ms.
  const std::regex after(R"(after (\d+) ms)");
  std::smatch mp, mw;
  const bool timed_plain = std::regex_search(refused_plain.err, mp, after);
  const bool timed_with = std::regex_search(refused_with.err, mw, after);
  CHECK(timed_plain == timed_with);
  if (timed_plain && timed_with) CHECK(std::abs(std::stol(mp[1]) - std::stol(mw[1])) <= 50);
  CHECK(std::regex_replace(refused_with.err, after, "after N ms") ==
        std::regex_replace(refused_plain.err, after, "after N ms"));
}

TEST_CASE("ringlet-run: a python3 script using sleep, socket, select and urllib", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  const std::string script = env_or_skip("RINGLET_PATCH_TESTS") + "/basic.py";
  const std::string py = python();
  if (py.empty()) RINGLET_SKIP("python3 is not installed");
  Run plain = run({py, script});
  Run with = run(patched({py, script}));
  INFO(plain.err);
  INFO(with.err);
  CHECK(plain.code() == 4);
  CHECK(with.code() == plain.code());
  CHECK(plain.out.find("OFF") == std::string::npos);
  CHECK(plain.out.find("urllib b 200") != std::string::npos);
  CHECK(with.out == plain.out);
  CHECK(stat_of(with.err, "clock_nanosleep").second >= 1);
  CHECK(stat_of(with.err, "select").second >= 1);
  CHECK(stat_of(with.err, "poll").second >= 1);
  CHECK(stat_of(with.err, "getaddrinfo").first >= 1);
  CHECK(stat_of(with.err, "connect").first >= 1);
  // RINGLET_PATCH=none: everything passes through, and the output is still the same.
  Run none = run(patched({py, script}), {"RINGLET_PATCH=none"});
  CHECK(none.out == plain.out);
  CHECK(stat_of(none.err, "select").first == 0);
}

TEST_CASE("ringlet-run: Ctrl-C interrupts a patched sleep, recv and select in python3", "[patch][process]") {
  REQUIRE_TOOL(env_or_skip("RINGLET_RUN"), "RINGLET_RUN");
  const std::string script = env_or_skip("RINGLET_PATCH_TESTS") + "/sigint.py";
  const std::string py = python();
  if (py.empty()) RINGLET_SKIP("python3 is not installed");
  auto interrupt_on_ready = [](const std::string& line, pid_t pid) {
    if (line.rfind("ready", 0) == 0) {
      std::this_thread::sleep_for(200ms);  // let it block
      kill(pid, SIGINT);
    }
  };
  Run plain = run({py, "-u", script}, {}, interrupt_on_ready);
  Run with = run(patched({py, "-u", script}), {}, interrupt_on_ready);
  INFO(with.err);
  CHECK(plain.code() == 3);
  CHECK(with.code() == plain.code());
  CHECK(with.out == plain.out);
  CHECK(with.out.find("interrupted recv ok") != std::string::npos);
  CHECK(stat_of(with.err, "recv").second >= 1);
}

TEST_CASE("ringlet-run: a C program waiting in poll, select and nanosleep", "[patch][process]") {
  const std::string prog = env_or_skip("RINGLET_POLL_PROG");
  REQUIRE_TOOL(prog, "RINGLET_POLL_PROG");
  Run plain = run({prog});
  Run with = run(patched({prog}));
  INFO(plain.out);
  INFO(with.err);
  CHECK(plain.code() == 5);
  CHECK(with.code() == plain.code());
  CHECK(plain.out.find("OFF") == std::string::npos);
  CHECK(with.out == plain.out);
  CHECK(stat_of(with.err, "poll").second >= 2);
  CHECK(stat_of(with.err, "select").second >= 1);
  CHECK(stat_of(with.err, "nanosleep").second >= 1);
}

TEST_CASE("ringlet-run: --stats adds the runtime's counters; --dump-signal is checked first", "[patch][process]") {
  const std::string rr = env_or_skip("RINGLET_RUN");
  const std::string prog = env_or_skip("RINGLET_POLL_PROG");
  REQUIRE_TOOL(prog, "RINGLET_POLL_PROG");
  Run with = run(patched({prog}));
  INFO(with.err);
  CHECK(with.code() == 5);
  // One report per process (the program forks a child that exits through exit()): each has
  // the runtime's line for its one scheduler, whose thread is that process's.
  const std::regex core_line(
      R"(ringlet patch:   core 0 \(tid (\d+)\): fibers (\d+) alive \(peak (\d+)\), (\d+) spawned, (\d+) switches; )"
      R"(parks (\d+) \(io (\d+), sleep (\d+), primitive \d+, join \d+, other \d+\); io (\d+) submitted, (\d+) completed; )"
      R"(timers (\d+) armed, (\d+) fired; remote wakes \d+ sent, \d+ received; )"
      R"(sleeps \d+, idle spins \d+ \(\d+ found a post, \d+ us\); stacks \d+ [KM]iB in use, \d+ [KM]iB cached; fair yields \d+)");
  std::vector<std::smatch> lines;
  for (auto it = std::sregex_iterator(with.err.begin(), with.err.end(), core_line); it != std::sregex_iterator(); ++it)
    lines.push_back(*it);
  REQUIRE(lines.size() == 2);
  CHECK(with.err.find("ringlet patch: runtime: 1 scheduler\n") != std::string::npos);
  CHECK(lines[0][1] != lines[1][1]);  // the parent's and the child's threads
  unsigned long io_parks = 0, sleep_parks = 0, submitted = 0, armed = 0, fired = 0;
  for (const auto& m : lines) {
    CHECK(std::stoul(m[2]) >= 1);   // main's fiber, alive at exit
    CHECK(std::stoul(m[4]) >= 1);   // spawned
    CHECK(std::stoul(m[5]) >= 2);   // switches
    io_parks += std::stoul(m[7]);
    sleep_parks += std::stoul(m[8]);
    submitted += std::stoul(m[9]);
    armed += std::stoul(m[11]);
    fired += std::stoul(m[12]);
  }
  CHECK(io_parks >= 3);     // poll for the child's write, poll and select timing out
  CHECK(sleep_parks >= 1);  // nanosleep
  CHECK(submitted >= io_parks);
  CHECK(armed >= 3);
  CHECK(fired >= 3);

  // A signal that cannot be one is refused before anything runs (the program would print).
  for (const char* bad : {"NOPE", "SIGNOPE", "0", "99", "KILL", "SIGSTOP", ""}) {
    Run r = run({rr, "--dump-signal", bad, "--", "echo", "ran"});
    INFO(bad);
    CHECK(r.code() == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("ringlet-run: --dump-signal: ", 0) == 0);
  }
  CHECK(run({rr, "--dump-signal"}).code() == 2);
  // A good one reaches the program's environment, as a number.
  for (const auto& [arg, num] : std::vector<std::pair<std::string, std::string>>{
           {"QUIT", "3"}, {"SIGQUIT", "3"}, {"usr2", "12"}, {"10", "10"}}) {
    Run r = run({rr, "--dump-signal=" + arg, "--", "sh", "-c", "echo $RINGLET_DUMP_SIGNAL"});
    INFO(arg);
    CHECK(r.code() == 0);
    CHECK(r.out == num + "\n");
  }
  Run help = run({rr, "--help"});
  CHECK(help.out.find("--dump-signal SIG") != std::string::npos);
}

TEST_CASE("ringlet-run: options, exit codes and programs it cannot patch", "[patch][process]") {
  const std::string rr = env_or_skip("RINGLET_RUN");
  REQUIRE_TOOL(rr, "RINGLET_RUN");
  Run help = run({rr, "--help"});
  CHECK(help.code() == 0);
  CHECK(help.out.find("usage: ringlet-run") != std::string::npos);
  CHECK(run({rr, "--bogus", "true"}).code() == 2);
  Run bad_groups = run({rr, "--patch", "all,-sockets", "--", "true"});
  CHECK(bad_groups.code() == 2);
  CHECK(bad_groups.err.find("unknown group 'sockets'") != std::string::npos);
  CHECK(run({rr}).code() == 2);
  Run missing = run({rr, "--", "no-such-program-ringlet"});
  CHECK(missing.code() == 127);
  CHECK(missing.err.find("not found") != std::string::npos);
  CHECK(run({rr, "--", "sh", "-c", "exit 3"}).code() == 3);
  Run check = run({rr, "--check", "--", "sh"});
  CHECK(check.code() == 0);
  // A statically linked program: said, and refused.
  const std::string stat_prog = env_or_skip("RINGLET_STATIC_PROG");
  if (!stat_prog.empty()) {
    Run st = run({rr, "--", stat_prog});
    CHECK(st.code() == 126);
    CHECK(st.err.find("statically linked") != std::string::npos);
    Run forced = run({rr, "--force", "--", stat_prog});
    CHECK(forced.code() == 0);
    CHECK(forced.out == "hello\n");
  }
  // Plain LD_PRELOAD works on its own, without the launcher.
  const std::string lib = env_or_skip("RINGLET_PATCH_LIB_PATH");
  if (!lib.empty()) {
    Run pre = run({"sh", "-c", "sleep 0.1; echo done"}, {"LD_PRELOAD=" + lib, "RINGLET_PATCH_STATS=1"});
    CHECK(pre.out == "done\n");
    CHECK(stat_of(pre.err, "clock_nanosleep").second + stat_of(pre.err, "nanosleep").second >= 1);
  }
}

// --- the thread group: unmodified thread-per-connection programs -------------------------

namespace {

// A program left running in the background; killed when the test ends.
struct Background {
  pid_t pid = -1;
  int out = -1;
  char err_path[40] = "/tmp/ringlet-patch-bgerr-XXXXXX";
  Background(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {}) {
    int err_fd = mkstemp(err_path);
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) exec_child(argv, extra_env, fds[1], err_fd, fds[0]);
    close(fds[1]);
    close(err_fd);
    out = fds[0];
  }
  ~Background() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out >= 0) close(out);
    unlink(err_path);
  }
  // The next stdout line, or "" after `seconds`.
  std::string line(double seconds) {
    std::string s;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{out, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char c;
      if (::read(out, &c, 1) != 1) break;
      if (c == '\n') return s;
      s += c;
    }
    return s;
  }
  std::string err() const {
    std::ifstream f(err_path);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
};

// A "Name:   N kB" field of a /proc file, KiB (-1 if absent).
long proc_field_kib(const std::string& path, const std::string& name) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(name, 0) == 0) return std::stol(line.substr(name.size()));
  return -1;
}

// Threads and VmRSS (KiB) of a live process.
std::pair<long, long> threads_and_rss(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  long threads = -1, rss = -1;
  while (std::getline(f, line)) {
    if (line.rfind("Threads:", 0) == 0) threads = std::stol(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
  }
  return {threads, rss};
}

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  ::close(s);
  return ntohs(a.sin_port);
}

bool wait_listening(int port, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<unsigned short>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(s);
    if (ok) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

struct EchoScale {
  long threads = -1, rss_kib = -1;
  long pte_kib = -1;     // the process's page tables (VmPTE)
  long kstack_kib = -1;  // kernel stacks its threads added (the machine's KernelStack delta)
  long total_kib() const { return rss_kib + pte_kib + kstack_kib; }
  bool verified = false;
  std::string diag;
};

// The echo server (natively or under ringlet-run) against `conns` checking clients, sampled
// while every connection is open and has been served once.
EchoScale echo_at_scale(const std::string& server, const std::string& client, int conns, bool patch) {
  const int port = free_port();
  std::vector<std::string> argv{server, std::to_string(port)};
  const long kstack0 = proc_field_kib("/proc/meminfo", "KernelStack:");
  Background srv(patch ? patched(argv, false) : argv);
  EchoScale r;
  if (srv.line(10).rfind("listening", 0) != 0) {
    r.diag = "server did not start: " + srv.err();
    return r;
  }
  Run c = run({client, std::to_string(port), std::to_string(conns), "2"}, {},
              [&](const std::string& line, pid_t) {
                if (line.rfind("open ", 0) != 0) return;
                std::tie(r.threads, r.rss_kib) = threads_and_rss(srv.pid);
                r.pte_kib = proc_field_kib("/proc/" + std::to_string(srv.pid) + "/status", "VmPTE:");
                r.kstack_kib = std::max(0L, proc_field_kib("/proc/meminfo", "KernelStack:") - kstack0);
              });
  r.verified = c.code() == 0 && c.out.find("verified " + std::to_string(conns)) != std::string::npos;
  r.diag = c.err + srv.err().substr(0, 2000);
  return r;
}

}  // namespace

// CPU time (user + system, clock ticks) a live process has used.
long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), {});
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

TEST_CASE("ringlet-run: threads that all wait wait, as natively: for a signal, or idle forever",
          "[patch][process][thread]") {
  const std::string prog = env_or_skip("RINGLET_WAIT_SIGNAL_PROG");
  REQUIRE_TOOL(prog, "RINGLET_WAIT_SIGNAL_PROG");
  Run plain = run({prog, "signal"});
  Run with = run(patched({prog, "signal"}, false));
  INFO(with.err);
  CHECK(plain.code() == 0);
  CHECK(plain.out == "woken by the handler: 0\n");
  CHECK(with.code() == plain.code());
  CHECK(with.out == plain.out);

  Background idle(patched({prog, "forever"}, false));
  REQUIRE(idle.line(10) == "waiting");
  const long before = cpu_ticks(idle.pid);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const long after = cpu_ticks(idle.pid);
  int status = 0;
  CHECK(waitpid(idle.pid, &status, WNOHANG) == 0);  // still waiting, as natively
  INFO("CPU ticks over the second: " << after - before);
  CHECK(before >= 0);
  CHECK(after - before <= sysconf(_SC_CLK_TCK) / 10);  // idle: at most 0.1 s of CPU
}

TEST_CASE("ringlet-run: a thread-per-connection C echo server holds 10 000 clients on a few OS threads",
          "[patch][process][thread]") {
  const std::string server = env_or_skip("RINGLET_THREAD_ECHO");
  const std::string client = env_or_skip("RINGLET_ECHO_CLIENT");
  REQUIRE_TOOL(server, "RINGLET_THREAD_ECHO");
  REQUIRE_TOOL(client, "RINGLET_ECHO_CLIENT");
  constexpr int kConns = 10'000;
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < kConns + 200)
    RINGLET_SKIP("RLIMIT_NOFILE's hard limit (" + std::to_string(rl.rlim_max) +
                 ") is below the 10 200 descriptors the server and client each need");
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);  // inherited by both

  const EchoScale with = echo_at_scale(server, client, kConns, true);
  const EchoScale plain = echo_at_scale(server, client, kConns, false);
  INFO("patched: " << with.threads << " threads, " << with.rss_kib << " KiB; native: "
                   << plain.threads << " threads, " << plain.rss_kib << " KiB\n" << with.diag << plain.diag);
  CHECK(with.verified);  // every connection answered correctly, twice
  CHECK(plain.verified);
  CHECK(with.threads >= 1);
  CHECK(with.threads <= 4);
  CHECK(plain.threads > kConns);  // the native run really had a thread per client
  CHECK(with.rss_kib > 0);
  CHECK(with.pte_kib >= 0);
  CHECK(plain.kstack_kib > 0);  // the native run's 10 000 kernel stacks were seen
  // The memory the server costs the machine: its resident pages, its page tables and its
  // threads' kernel stacks. (RSS alone is about native's: each fiber thread has a TLS block
  // of glibc's size, as each native thread has, at the top of its stack.)
  CHECK(with.total_kib() < plain.total_kib());
  std::printf("thread echo server, %d connections: patched %ld threads, %ld KiB RSS + %ld page tables + %ld "
              "kernel stacks; native %ld threads, %ld KiB RSS + %ld + %ld (RSS %.2fx, total %.2fx)\n",
              kConns, with.threads, with.rss_kib, with.pte_kib, with.kstack_kib, plain.threads, plain.rss_kib,
              plain.pte_kib, plain.kstack_kib, static_cast<double>(with.rss_kib) / static_cast<double>(plain.rss_kib),
              static_cast<double>(with.total_kib()) / static_cast<double>(plain.total_kib()));
}

// `python3 -m http.server` is http.server.test() with ThreadingHTTPServer. Its stock listen
// queue of 5 makes `ab -c 200` stall for good on this kernel even natively (measured: about
// 4 870 of 5 000 requests, then ab's timeout), so the server is started the same way with a
// queue of 1 024; everything else is the module's own code.
TEST_CASE("ringlet-run: python3's ThreadingHTTPServer (http.server) under ab -c 200 -n 5000", "[patch][process][thread]") {
  const std::string rr = env_or_skip("RINGLET_RUN");
  REQUIRE_TOOL(rr, "RINGLET_RUN");
  if (run({"sh", "-c", "command -v ab"}).code() != 0)
    RINGLET_SKIP("ab (Debian's apache2-utils) is not installed; scripts/setup.sh installs it");
  char dir[] = "/tmp/ringlet-httpd-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string body(2048, 'r');
  { std::ofstream(std::string(dir) + "/page.txt") << body; }
  const int port = free_port();
  const std::string script =
      "import os, http.server as h; os.chdir('" + std::string(dir) + "'); "
      "h.ThreadingHTTPServer.request_queue_size = 1024; "
      "h.test(HandlerClass=h.SimpleHTTPRequestHandler, ServerClass=h.ThreadingHTTPServer, port=" +
      std::to_string(port) + ", bind='127.0.0.1')";
  Background srv(patched({python(), "-c", script}, false));
  REQUIRE(wait_listening(port, 20));
  std::atomic<bool> stop{false};
  std::atomic<long> max_threads{0};
  std::thread sampler([&] {
    while (!stop) {
      max_threads = std::max(max_threads.load(), threads_and_rss(srv.pid).first);
      std::this_thread::sleep_for(10ms);
    }
  });
  Run ab = run({"ab", "-q", "-r", "-c", "200", "-n", "5000", "http://127.0.0.1:" + std::to_string(port) + "/page.txt"});
  stop = true;
  sampler.join();
  INFO(ab.out << ab.err << srv.err().substr(0, 2000));
  CHECK(ab.code() == 0);
  CHECK(ab.out.find("Complete requests:      5000") != std::string::npos);
  CHECK(ab.out.find("Failed requests:        0") != std::string::npos);
  CHECK(ab.out.find("Non-2xx") == std::string::npos);
  CHECK(ab.out.find("Document Length:        2048 bytes") != std::string::npos);
  CHECK(max_threads.load() >= 1);
  CHECK(max_threads.load() <= 4);
  std::printf("python3 -m http.server under ringlet-run: ab -c 200 -n 5000, at most %ld OS threads\n",
              max_threads.load());
  std::remove((std::string(dir) + "/page.txt").c_str());
  rmdir(dir);
}

TEST_CASE("ringlet-run: the monitor names a thread that spins for 300 ms and shows where", "[patch][process][thread]") {
  const std::string prog = env_or_skip("RINGLET_SPIN_PROG");
  REQUIRE_TOOL(prog, "RINGLET_SPIN_PROG");
  // Off by default: an unmodified program's stderr gets no report.
  Run plain = run(patched({prog}, false));
  CHECK(plain.code() == 0);
  CHECK(plain.out == "done\n");
  CHECK(plain.err.find("held its scheduler") == std::string::npos);
  Run r = run(patched({prog}, false), {"RINGLET_MAX_BLOCKING_MS=100"});
  INFO(r.err);
  CHECK(r.code() == 0);
  CHECK(r.out == "done\n");
  CHECK(r.err.find("ringlet: report 1: fiber 'spinner' (#") != std::string::npos);
  // The spinner is the program's one thread: on carrier 1 as soon as there are two.
  CHECK(r.err.find(", core " + std::to_string(first_thread_carrier()) + ") has held its scheduler") != std::string::npos);
  CHECK(r.err.find("has held its scheduler for") != std::string::npos);
  CHECK(r.err.find("threshold 100 ms") != std::string::npos);
  CHECK(r.err.find("spin_for+0x") != std::string::npos);  // where it spins, symbolised
  const auto at = r.err.find("let its scheduler go after ");
  REQUIRE(at != std::string::npos);
  const long held = std::stol(r.err.substr(at + 27));
  CHECK(held >= 250);
  CHECK(held < 2000);
  // A higher threshold says nothing; 0 turns the monitor off.
  Run quiet = run(patched({prog}, false), {"RINGLET_MAX_BLOCKING_MS=1000"});
  CHECK(quiet.code() == 0);
  CHECK(quiet.err.find("held its scheduler") == std::string::npos);
  Run off = run(patched({prog}, false), {"RINGLET_MAX_BLOCKING_MS=0"});
  CHECK(off.err.find("held its scheduler") == std::string::npos);
  // Malformed settings are said, and the program runs with the defaults.
  Run bad = run(patched({prog}, false), {"RINGLET_MAX_BLOCKING_MS=soon"});
  INFO(bad.err);
  CHECK(bad.code() == 0);
  CHECK(bad.out == "done\n");
  CHECK(bad.err.find("RINGLET_MAX_BLOCKING_MS='soon' is not a number of milliseconds") != std::string::npos);
  CHECK(bad.err.find("held its scheduler") != std::string::npos);  // 100 ms, as asked for
  // A number of carriers that is not one is refused before the program starts, preloaded
  // directly or through ringlet-run.
  const std::string lib = env_or_skip("RINGLET_PATCH_LIB_PATH");
  for (const char* v : {"RINGLET_THREADS=many", "RINGLET_THREADS=-2", "RINGLET_THREADS=1025"}) {
    Run refused = run(patched({prog}, false), {v});
    INFO(v << ": " << refused.err);
    CHECK(refused.code() == 2);
    CHECK(refused.out.empty());
    CHECK(refused.err.find("ringlet-run: " + std::string(v) + ": not a number of OS threads from 0 (one per CPU) to 1024") != std::string::npos);
    Run preloaded = run({prog}, {"LD_PRELOAD=" + lib, v});
    INFO(preloaded.err);
    CHECK(preloaded.code() == 2);
    CHECK(preloaded.out.empty());
    CHECK(preloaded.err.find("is not a number of OS threads from 0 (one per CPU) to 1024; the program was not started") != std::string::npos);
  }
  Run option = run({env_or_skip("RINGLET_RUN"), "--threads", "x", prog});
  CHECK(option.code() == 2);
  CHECK(option.err.find("ringlet-run: --threads x: not a number of OS threads") != std::string::npos);
}

TEST_CASE("ringlet-run: monitor reports go to RINGLET_MONITOR_FILE; a stack seen before is counted", "[patch][process][thread]") {
  const std::string prog = env_or_skip("RINGLET_SPIN_PROG");
  REQUIRE_TOOL(prog, "RINGLET_SPIN_PROG");
  char dir[] = "/tmp/ringlet-monitor-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string file = std::string(dir) + "/monitor.log";
  // The file alone turns the monitor on (100 ms) for a patched program; stderr stays clean.
  Run r = run(patched({prog, "repeat"}, false), {"RINGLET_MONITOR_FILE=" + file});
  INFO(r.err);
  CHECK(r.code() == 0);
  CHECK(r.out == "done\n");
  CHECK(r.err.find("ringlet:") == std::string::npos);
  std::string log;
  if (FILE* f = std::fopen(file.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) log.append(buf, n);
    std::fclose(f);
  }
  INFO(log);
  auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (auto at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count("has held its scheduler") == 3);
  CHECK(count("ringlet: report 1: fiber 'spinner'") == 1);
  CHECK(count("spin_here+0x") == 1);  // the backtrace once
  CHECK(count("Same place as report 1 (2 times now).") == 1);
  CHECK(count("Same place as report 1 (3 times now).") == 1);
  CHECK(count("let its scheduler go after") == 3);
  // A file that cannot be opened is said on stderr, which then gets the reports.
  Run bad = run(patched({prog}, false), {"RINGLET_MONITOR_FILE=/nonexistent/dir/monitor.log"});
  CHECK(bad.code() == 0);
  CHECK(bad.err.find("RINGLET_MONITOR_FILE='/nonexistent/dir/monitor.log' cannot be opened") != std::string::npos);
  CHECK(bad.err.find("has held its scheduler") != std::string::npos);
  std::remove(file.c_str());
  rmdir(dir);
}
