// net's names: addresses parsed and printed, malformed ones rejected with the reason, and
// DNS (literals, localhost, unknown names, a lookup that waits on its thread while other
// fibers run, a name from a temporary hosts file). The suite runs on both engines.
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "helpers.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;
using namespace ringlet;
using namespace ringlet::net;
using ringlet::test::in_scheduler;

// --- addresses ------------------------------------------------------------------------------

TEST_CASE("addresses parse and print", "[net][address]") {
  auto a = Address::parse("127.0.0.1:8080");
  CHECK(a.family() == Family::IPv4);
  CHECK(a.port() == 8080);
  CHECK(a.host() == "127.0.0.1");
  CHECK(a.to_string() == "127.0.0.1:8080");
  CHECK(a.is_loopback());

  auto b = Address::parse("[::1]:443");
  CHECK(b.family() == Family::IPv6);
  CHECK(b.port() == 443);
  CHECK(b.to_string() == "[::1]:443");
  CHECK(Address::parse(b.to_string()) == b);

  auto u = Address::parse("/tmp/ringlet.sock");
  CHECK(u.family() == Family::Unix);
  CHECK(u.to_string() == "/tmp/ringlet.sock");
  CHECK(Address::parse("unix:rel.sock").host() == "rel.sock");
  auto abs = Address::parse("@ringlet-abstract");
  CHECK(abs.family() == Family::Unix);
  CHECK(abs.to_string() == "@ringlet-abstract");

  auto hp = split_host_port("example.com:80");
  CHECK(hp.host == "example.com");
  CHECK(hp.port == 80);
  CHECK(split_host_port("[fe80::1]:1").host == "fe80::1");
}

TEST_CASE("malformed addresses are rejected with the reason", "[net][address]") {
  auto why = [](std::string_view text) {
    std::string w;
    CHECK_FALSE(Address::try_parse(text, &w));
    return w;
  };
  CHECK_THAT(why("127.0.0.1"), Catch::Contains("missing port"));
  CHECK_THAT(why("127.0.0.1:99999"), Catch::Contains("0 to 65535"));
  CHECK_THAT(why("127.0.0.1:http"), Catch::Contains("not a number"));
  CHECK_THAT(why("::1:80"), Catch::Contains("needs brackets"));
  CHECK_THAT(why("[::1:80"), Catch::Contains("without its ']'"));
  CHECK_THAT(why("[::1]80"), Catch::Contains("missing \":port\""));
  CHECK_THAT(why(":80"), Catch::Contains("missing host"));
  CHECK_THAT(why("example.com:80"), Catch::Contains("not a numeric"));
  CHECK_THAT(why("/" + std::string(200, 'x')), Catch::Contains("at most"));
  CHECK_THROWS_AS(Address::parse("nonsense"), std::invalid_argument);
  CHECK_THROWS_WITH(Address::parse("1.2.3.4:-1"), Catch::Contains("1.2.3.4:-1"));
}

// --- DNS ------------------------------------------------------------------------------------

TEST_CASE("DNS: literals need no lookup, localhost resolves, unknown names fail clearly", "[net][dns]") {
  in_scheduler([] {
    auto lit = resolve("10.1.2.3", 7);
    REQUIRE(lit.size() == 1);
    CHECK(lit[0].to_string() == "10.1.2.3:7");

    auto lo = resolve("localhost:8080");
    REQUIRE_FALSE(lo.empty());
    for (auto& a : lo) {
      CHECK(a.is_loopback());
      CHECK(a.port() == 8080);
    }
    auto v4 = resolve("localhost", 1, Deadline::never(), AF_INET);
    REQUIRE_FALSE(v4.empty());
    CHECK(v4[0].to_string() == "127.0.0.1:1");

    std::error_code ec;
    auto none = resolve("no-such-host.invalid", 80, Deadline::after(10s), AF_UNSPEC, ec);
    CHECK(none.empty());
    CHECK(ec.category() == dns_category());
    CHECK_THROWS_WITH(resolve("no-such-host.invalid:80"), Catch::Contains("no-such-host.invalid"));
  });
}

TEST_CASE("DNS: other fibers run while a lookup waits on its thread", "[net][dns]") {
  in_scheduler([] {
    int ticks = 0;
    auto ticker = spawn([&] {
      for (;;) {
        ++ticks;
        ringlet::sleep(1ms);
      }
    });
    for (int i = 0; i < 20; ++i) CHECK_FALSE(resolve("localhost", 80).empty());
    ringlet::sleep(5ms);
    ticker.kill();
    CHECK(ticks > 0);
  });
}

TEST_CASE("DNS: a name from a temporary hosts file", "[net][dns]") {
  // /etc/hosts replaced by a bind mount in a private mount namespace of a child process:
  // the real getaddrinfo reads it, as it would the real file.
  char path[] = "/tmp/ringlet-hosts-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  const std::string hosts = "127.0.0.1 localhost\n192.0.2.77 ringlet-test-host.example\n";
  REQUIRE(::write(fd, hosts.data(), hosts.size()) == static_cast<ssize_t>(hosts.size()));
  ::close(fd);
  auto r = test::in_child([&] {
    if (unshare(CLONE_NEWNS) != 0) {
      std::fprintf(stderr, "SKIP unshare(CLONE_NEWNS): %s", std::strerror(errno));
      _exit(3);
    }
    mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
    if (mount(path, "/etc/hosts", nullptr, MS_BIND, nullptr) != 0) {
      std::fprintf(stderr, "SKIP bind mount over /etc/hosts: %s", std::strerror(errno));
      _exit(3);
    }
    int code = 0;
    ringlet::run([&] {
      auto as = resolve("ringlet-test-host.example:9", 5s);
      if (as.size() != 1 || as[0].to_string() != "192.0.2.77:9") {
        std::fprintf(stderr, "got %zu addresses, first %s", as.size(), as.empty() ? "-" : as[0].to_string().c_str());
        code = 1;
      }
    });
    _exit(code);
  });
  ::unlink(path);
  if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3) RINGLET_SKIP(r.err);
  INFO(r.err);
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
}
