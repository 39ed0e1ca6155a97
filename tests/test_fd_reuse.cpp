// A descriptor number closed and reused under the engine's kept state (the epoll engine keeps
// its interest set: a registration per number, made at the first park). Every case: a wait
// on the new file must end when the new file is ready, and nothing that happens to the old
// file may end it with a wrong result. Both engines; the cases exist for epoll's sake.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "helpers.hpp"
#include "internal/io.hpp"
#include "ringlet/io.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;
using namespace ringlet;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

namespace {

struct Pair {
  int a = -1, b = -1;  // a: the side waited on; b: its peer
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
};

// Write `c` to fd after `after`, from another fiber.
Greenlet<void> write_later(int fd, char c, std::chrono::milliseconds after) {
  return spawn([fd, c, after] {
    ringlet::sleep(after);
    REQUIRE(::write(fd, &c, 1) == 1);
  });
}

// Park once on a's readiness (so that the engine registers it), ended by a byte.
void park_once(int a, int b) {
  auto w = write_later(b, 'x', 20ms);
  char c = 0;
  REQUIRE(io::read(a, &c, 1) == 1);
  w.join();
}

// The same through net: a trusted registration (net reports its closes).
void park_once(net::TcpStream& s, int b) {
  auto w = write_later(b, 'x', 10ms);
  char c = 0;
  REQUIRE(s.read_some({&c, 1}) == 1);
  w.join();
}

}  // namespace

TEST_CASE("fd reuse: a raw close, the number reused, a raw read waits on the new file", "[io][fdreuse]") {
  in_scheduler([] {
    for (int round = 0; round < 20; ++round) {
      Pair p;
      park_once(p.a, p.b);
      ::close(p.a);  // unseen by the runtime
      ::close(p.b);
      Pair q;  // the lowest numbers: the same ones
      REQUIRE(q.a == p.a);
      auto w = write_later(q.b, 'y', 20ms);
      const auto t0 = Clock::now();
      char c = 0;
      REQUIRE(io::read(q.a, &c, 1) == 1);
      CHECK(c == 'y');
      CHECK(seconds_since(t0) < 0.5);
      w.join();
      ::close(q.a);
      ::close(q.b);
    }
  });
}

TEST_CASE("fd reuse: sockets closed through net, numbers reused: no epoll_ctl lost", "[io][fdreuse][net]") {
  in_scheduler([] {
    for (int round = 0; round < 20; ++round) {
      Pair p;
      int b = p.b;
      {
        net::TcpStream s(p.a, net::Socket::adopted);
        park_once(s, b);
      }  // closed through net
      ::close(b);
      Pair q;
      REQUIRE(q.a == p.a);
      net::TcpStream s(q.a, net::Socket::adopted);
      auto w = write_later(q.b, 'y', 10ms);
      const auto t0 = Clock::now();
      char c = 0;
      REQUIRE(s.read_some({&c, 1}) == 1);
      CHECK(c == 'y');
      CHECK(seconds_since(t0) < 0.5);
      w.join();
      ::close(q.b);
    }
  });
}

// The dangerous case: a socket net manages, its number replaced behind net's back (dup2 of
// another file over it), the old file kept alive by a dup (so epoll keeps the old
// registration and reports its events under the same number).
TEST_CASE("fd reuse: a number replaced unseen, the old file alive in a dup: late at worst, never wrong or lost",
          "[io][fdreuse][net]") {
  in_scheduler([] {
    Pair p;
    net::TcpStream s(p.a, net::Socket::adopted);
    park_once(s, p.b);
    const int old_copy = ::dup(p.a);  // keeps the old file, and its registration, alive
    REQUIRE(old_copy >= 0);
    Pair q;
    REQUIRE(::dup2(q.a, p.a) == p.a);  // unseen: s's number names q's file now
    ::close(q.a);
    // Activity on the old file: its events must not end the wait with the old data.
    auto noise = spawn([&] {
      for (int i = 0; i < 5; ++i) {
        ringlet::sleep(20ms);
        REQUIRE(::write(p.b, "o", 1) == 1);
      }
    });
    auto w = write_later(q.b, 'n', 200ms);
    const auto t0 = Clock::now();
    char c = 0;
    REQUIRE(s.read_some({&c, 1}) == 1);
    CHECK(c == 'n');  // the new file's byte, not the old one's
    CHECK(seconds_since(t0) < 3.0);  // late by one or two re-check periods at worst
    w.join();
    noise.join();
    // Quiet old file: a wait on the new one still ends.
    auto w2 = write_later(q.b, 'm', 50ms);
    REQUIRE(s.read_some({&c, 1}) == 1);
    CHECK(c == 'm');
    w2.join();
    char old[8];
    CHECK(::read(old_copy, old, sizeof old) == 5);  // the old file's bytes, all still there
    ::close(old_copy);
    ::close(p.b);
    ::close(q.b);
  });
}

TEST_CASE("fd reuse: a number replaced unseen, the old file gone: the wait is late at worst", "[io][fdreuse][net]") {
  in_scheduler([] {
    Pair p;
    net::TcpStream s(p.a, net::Socket::adopted);
    park_once(s, p.b);
    Pair q;
    REQUIRE(::dup2(q.a, p.a) == p.a);  // unseen; the old file's last reference goes
    ::close(q.a);
    ::close(p.b);
    auto w = write_later(q.b, 'n', 20ms);
    const auto t0 = Clock::now();
    char c = 0;
    REQUIRE(s.read_some({&c, 1}) == 1);
    CHECK(c == 'n');
    CHECK(seconds_since(t0) < 3.0);
    w.join();
    ::close(q.b);
  });
}

TEST_CASE("fd reuse: fd_replaced, then dup2 over the number: a trusted wait on the new file is prompt",
          "[io][fdreuse][net]") {
  in_scheduler([] {
    Pair p;
    net::TcpStream s(p.a, net::Socket::adopted);
    park_once(s, p.b);
    const int old_copy = ::dup(p.a);
    Pair q;
    detail::fd_replaced(p.a);  // what the patch's dup2 hook says
    REQUIRE(::dup2(q.a, p.a) == p.a);
    ::close(q.a);
    auto noise = write_later(p.b, 'o', 5ms);
    auto w = write_later(q.b, 'n', 60ms);
    const auto t0 = Clock::now();
    char c = 0;
    REQUIRE(s.read_some({&c, 1}) == 1);
    CHECK(c == 'n');
    CHECK(seconds_since(t0) < 0.5);
    w.join();
    noise.join();
    ::close(old_copy);
    ::close(p.b);
    ::close(q.b);
  });
}
