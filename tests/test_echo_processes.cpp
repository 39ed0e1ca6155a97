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
#include "process.hpp"
#include "ringlet/net.hpp"

extern char** environ;

using namespace std::chrono_literals;

namespace {

using ringlet::test::Process;

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
