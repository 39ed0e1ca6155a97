// examples/echo_server and examples/echo_client run as processes against each other, the way
// a user runs them. The binaries' folder comes from RINGLET_EXAMPLES (set by meson); the
// engine the suite runs on (RINGLET_BACKEND) is inherited by them.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "ringlet/net.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

std::string examples_dir() {
  const char* d = std::getenv("RINGLET_EXAMPLES");
  return d ? d : "examples";
}

// A child process with its stdout and stderr on pipes.
class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    args[0] = examples_dir() + "/" + args[0];
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
    REQUIRE(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) == 0);
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

// Start echo_server on a free port; returns the address it printed.
std::string start_server(Process& server) {
  std::string first = server.line();
  INFO(first << server.err());
  const std::string key = "listening on ";
  auto at = first.find(key);
  REQUIRE(at != std::string::npos);
  auto end = first.find(' ', at + key.size());
  return first.substr(at + key.size(), end - at - key.size());
}

}  // namespace

TEST_CASE("echo_server and echo_client as processes: 500 connections, every reply verified", "[net][examples]") {
  Process server({"echo_server", "--listen", "127.0.0.1:0"});
  const std::string addr = start_server(server);
  Process client({"echo_client", "--connect", addr, "--conns", "500", "--rounds", "20", "--size", "64"});
  int rc = client.wait();
  INFO(client.out() << client.err());
  CHECK(rc == 0);
  CHECK_THAT(client.out(), Catch::Contains("10000 round trips"));
  CHECK_THAT(client.out(), Catch::Contains("0 mismatched replies, 0 failed connections"));
  CHECK_THAT(client.out(), Catch::Contains("p99"));

  server.signal(SIGINT);
  CHECK(server.wait(10s) == 0);
  INFO(server.out() << server.err());
  CHECK_THAT(server.out(), Catch::Contains("Interrupt: stopping"));
  CHECK_THAT(server.out(), Catch::Contains("stopped: 500 connections served, 640000 bytes echoed, peak "));
  // Hundreds at once on one thread (a client that finishes early may leave before the last
  // one connects, so not always all 500).
  std::smatch m;
  const std::string out = server.out();
  REQUIRE(std::regex_search(out, m, std::regex("peak (\\d+) concurrent")));
  CHECK(std::stoi(m[1]) >= 100);
  CHECK_THAT(server.out(), Catch::Contains("0 handler errors"));
}

TEST_CASE("echo_client exits non-zero when replies differ (--upper server)", "[net][examples]") {
  Process server({"echo_server", "--listen", "127.0.0.1:0", "--upper"});
  const std::string addr = start_server(server);
  Process plain({"echo_client", "--connect", addr, "--conns", "5", "--rounds", "3"});
  CHECK(plain.wait() == 1);
  CHECK_THAT(plain.out(), Catch::Contains("5 mismatched replies"));
  CHECK_THAT(plain.err(), Catch::Contains("reply differs"));
  Process upper({"echo_client", "--connect", addr, "--conns", "5", "--rounds", "3", "--upper", "--size", "100000"});
  INFO(upper.out() << upper.err());
  CHECK(upper.wait() == 0);
  server.signal(SIGTERM);
  CHECK(server.wait(10s) == 0);
}

TEST_CASE("echo_server stops gracefully with connections open: grace, then kill", "[net][examples]") {
  Process server({"echo_server", "--listen", "127.0.0.1:0", "--grace", "0.3", "--max-conns", "2"});
  const std::string addr = start_server(server);
  int rc = -2;
  double took = 0;
  ringlet::run([&] {
    auto a = ringlet::net::TcpStream::connect(addr, 5s);
    a.write_all("hi");
    char b[2];
    REQUIRE(a.read_exact(b, ringlet::Deadline::after(5s)) == 2);
    auto t0 = ringlet::Clock::now();
    server.signal(SIGTERM);
    // The open connection is closed by the server once the grace is over.
    CHECK(a.read_some(b, ringlet::Deadline::after(5s)) == 0);
    took = ringlet::test::seconds_since(t0);
  });
  rc = server.wait(10s);
  INFO(server.out() << server.err());
  CHECK(rc == 0);
  CHECK(took >= 0.25);
  CHECK(took < 3.0);
  CHECK_THAT(server.out(), Catch::Contains("stopped: 1 connections served, 2 bytes echoed, peak 1 concurrent"));
}

TEST_CASE("the examples reject bad arguments clearly", "[net][examples]") {
  Process bad_addr({"echo_server", "--listen", "nonsense"});
  CHECK(bad_addr.wait() == 1);
  CHECK_THAT(bad_addr.err(), Catch::Contains("missing port"));
  Process bad_count({"echo_client", "--conns", "0"});
  CHECK(bad_count.wait() == 2);
  CHECK_THAT(bad_count.err(), Catch::Contains("--conns"));
  Process refused({"echo_client", "--connect", "127.0.0.1:1", "--conns", "2"});
  CHECK(refused.wait() == 1);
  CHECK_THAT(refused.err(), Catch::Contains("Connection refused"));
}

TEST_CASE("echo_server --threads 2 under the echo client, both spreads; stop with connections on both cores",
          "[net][examples][multicore]") {
  for (const char* spread : {"reuseport", "handoff"}) {
    INFO(spread);
    {
      Process server({"echo_server", "--listen", "127.0.0.1:0", "--threads", "2", "--spread", spread});
      const std::string addr = start_server(server);
      CHECK_THAT(server.out() + server.err(), !Catch::Contains("error"));
      Process client({"echo_client", "--connect", addr, "--conns", "1000", "--rounds", "20", "--size", "64"});
      const int rc = client.wait();
      INFO(client.out() << client.err());
      CHECK(rc == 0);
      CHECK_THAT(client.out(), Catch::Contains("20000 round trips"));
      CHECK_THAT(client.out(), Catch::Contains("0 mismatched replies, 0 failed connections"));
      server.signal(SIGINT);
      CHECK(server.wait(10s) == 0);
      INFO(server.out() << server.err());
      CHECK_THAT(server.out(), Catch::Contains("2 threads, " + std::string(spread)));
      CHECK_THAT(server.out(), Catch::Contains("stopped: 1000 connections served, 1280000 bytes echoed"));
      CHECK_THAT(server.out(), Catch::Contains("0 open now"));
    }
    // Eight open connections (on both cores: handoff deals them out in turn, and the kernel
    // spreads reuseport's); SIGTERM gives them the grace, then closes them all.
    Process server({"echo_server", "--listen", "127.0.0.1:0", "--threads", "2", "--spread", spread, "--grace", "0.3"});
    const std::string addr = start_server(server);
    double took = 0;
    ringlet::run([&] {
      std::vector<ringlet::net::TcpStream> conns;
      for (int i = 0; i < 8; ++i) {
        conns.push_back(ringlet::net::TcpStream::connect(addr, 5s));
        conns.back().write_all("hi");
        char b[2];
        REQUIRE(conns.back().read_exact(b, ringlet::Deadline::after(5s)) == 2);
      }
      auto t0 = ringlet::Clock::now();
      server.signal(SIGTERM);
      for (auto& c : conns) {
        char b[2];
        CHECK(c.read_some(b, ringlet::Deadline::after(5s)) == 0);
      }
      took = ringlet::test::seconds_since(t0);
    });
    CHECK(server.wait(10s) == 0);
    INFO(server.out() << server.err());
    CHECK(took >= 0.25);
    CHECK(took < 3.0);
    CHECK_THAT(server.out(), Catch::Contains("stopped: 8 connections served, 16 bytes echoed, peak 8 concurrent, 0 open now"));
  }
}
