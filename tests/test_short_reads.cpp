// A short read from a TCP stream: the epoll engine then parks the next read without trying
// it until a read-side event arrives (epoll_reactor.cpp). Every case: whatever a short read
// left in the queue, or what arrives after it, is read; never a wait for an event that has
// already been reported; and a stream with a low-water mark is read as natively. Both
// engines; the cases exist for epoll's sake.
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "helpers.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;
using namespace ringlet;
using namespace ringlet::net;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

namespace {

// A connected pair over loopback: `server` read through net, `peer` a raw descriptor
// (written without a switch point, so several sends reach one harvest of events).
struct TcpPair {
  TcpStream server;
  TcpStream client;
  int peer = -1;
  TcpPair() {
    auto listener = TcpListener::bind("127.0.0.1:0");
    client = TcpStream::connect(listener.local_address(), 5s);
    server = listener.accept(5s);
    peer = client.fd();
  }
};

void send_raw(int fd, const char* s, int flags = 0) {
  const auto n = std::strlen(s);
  REQUIRE(::send(fd, s, n, flags | MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(n));
}

// One short read through a park: the registration exists and the queue is known empty.
void short_read_after_park(TcpPair& p) {
  auto w = spawn([&] {
    ringlet::sleep(10ms);
    send_raw(p.peer, "x");
  });
  char buf[64];
  REQUIRE(p.server.read_some({buf, sizeof buf}, Deadline::after(5s)) == 1);
  CHECK(buf[0] == 'x');
  w.join();
}

std::string read_str(TcpStream& s, Deadline d) {
  char buf[64];
  const std::size_t n = s.read_some({buf, sizeof buf}, d);
  return std::string(buf, n);
}

}  // namespace

TEST_CASE("short reads: data and the end of the stream in one event: the next read sees the end",
          "[io][shortread][net]") {
  in_scheduler([] {
    for (int round = 0; round < 5; ++round) {
      TcpPair p;
      short_read_after_park(p);
      // Parked in read_some when both arrive: one event reports data and the hang-up; the
      // read takes the data (and the FIN: short), the next must see the end at once.
      auto w = spawn([&] {
        ringlet::sleep(10ms);
        send_raw(p.peer, "abc");
        REQUIRE(::shutdown(p.peer, SHUT_WR) == 0);
      });
      CHECK(read_str(p.server, Deadline::after(5s)) == "abc");
      const auto t0 = Clock::now();
      CHECK(read_str(p.server, Deadline::after(5s)) == "");  // the end, not a timeout
      CHECK(seconds_since(t0) < 0.5);
      w.join();
    }
  });
}

TEST_CASE("short reads: urgent data stops a read short with more queued: the next read gets it",
          "[io][shortread][net]") {
  in_scheduler([] {
    TcpPair p;
    short_read_after_park(p);
    auto w = spawn([&] {
      ringlet::sleep(10ms);
      send_raw(p.peer, "abc");
      send_raw(p.peer, "X", MSG_OOB);  // the urgent mark: a read stops before it
      send_raw(p.peer, "def");
    });
    CHECK(read_str(p.server, Deadline::after(5s)) == "abc");
    const auto t0 = Clock::now();
    CHECK(read_str(p.server, Deadline::after(5s)) == "def");  // X is out of band
    CHECK(seconds_since(t0) < 0.5);
    w.join();
  });
}

TEST_CASE("short reads: what arrives between a short read and the next is read", "[io][shortread][net]") {
  in_scheduler([] {
    TcpPair p;
    for (int i = 0; i < 100; ++i) {
      short_read_after_park(p);
      // No switch point between the short read and the next read: the data's event is not
      // harvested yet when the read parks without trying; the harvest must wake it.
      send_raw(p.peer, "y");
      const auto t0 = Clock::now();
      CHECK(read_str(p.server, Deadline::after(5s)) == "y");
      CHECK(seconds_since(t0) < 0.5);
      // And data whose event the loop reported while nobody waited (the sleep: the loop
      // waits in the engine, which harvests it).
      send_raw(p.peer, "z");
      ringlet::sleep(1ms);
      CHECK(read_str(p.server, Deadline::after(5s)) == "z");
    }
  });
}

TEST_CASE("short reads: a full read leaves the rest to be read at once", "[io][shortread][net]") {
  in_scheduler([] {
    TcpPair p;
    short_read_after_park(p);
    std::string big(100, 'q');
    auto w = spawn([&] {
      ringlet::sleep(10ms);
      send_raw(p.peer, big.c_str());
    });
    char buf[64];
    REQUIRE(p.server.read_some({buf, sizeof buf}, Deadline::after(5s)) == 64);  // full: more may wait
    const auto t0 = Clock::now();
    CHECK(read_str(p.server, Deadline::after(5s)) == std::string(36, 'q'));
    CHECK(seconds_since(t0) < 0.5);
    w.join();
  });
}

namespace {

// server has a low-water mark of 4: arrivals below it raise no event, so its short read does
// not mean an empty queue; a read must try, and get what is queued below the mark.
void reads_below_the_mark(TcpStream& server, int peer) {
  auto w = spawn([&] {
    ringlet::sleep(10ms);
    send_raw(peer, "abcd");  // at the mark: the parked read is woken
  });
  CHECK(read_str(server, Deadline::after(5s)) == "abcd");  // short: 4 of 64
  w.join();
  send_raw(peer, "ef");  // below the mark: no event, ever
  const auto t0 = Clock::now();
  CHECK(read_str(server, Deadline::after(5s)) == "ef");
  CHECK(seconds_since(t0) < 0.5);
}

}  // namespace

TEST_CASE("short reads: a low-water mark from set_option, the listener or an adopted descriptor: "
          "the read after a short one tries",
          "[io][shortread][net]") {
  in_scheduler([] {
    SECTION("set_option on the stream") {
      TcpPair p;
      p.server.set_option(SOL_SOCKET, SO_RCVLOWAT, 4);
      reads_below_the_mark(p.server, p.peer);
    }
    SECTION("set_option on the listener, before the accept") {
      auto listener = TcpListener::bind("127.0.0.1:0");
      listener.set_option(SOL_SOCKET, SO_RCVLOWAT, 4);
      auto client = TcpStream::connect(listener.local_address(), 5s);
      auto server = listener.accept(5s);
      REQUIRE(server.get_option(SOL_SOCKET, SO_RCVLOWAT) == 4);  // the kernel copied it
      reads_below_the_mark(server, client.fd());
    }
    SECTION("setsockopt on a descriptor, then adopted") {
      TcpPair p;
      const int fd = p.server.release();
      const int four = 4;
      REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &four, sizeof four) == 0);
      TcpStream server(fd);
      reads_below_the_mark(server, p.peer);
    }
    SECTION("moved, and the mark taken back by set_option") {
      TcpPair p;
      p.server.set_option(SOL_SOCKET, SO_RCVLOWAT, 4);
      TcpStream server = std::move(p.server);
      reads_below_the_mark(server, p.peer);
      server.set_option(SOL_SOCKET, SO_RCVLOWAT, 1);  // plain again: a read may skip its try
      auto w = spawn([&] {
        ringlet::sleep(10ms);
        send_raw(p.peer, "g");
      });
      CHECK(read_str(server, Deadline::after(5s)) == "g");
      w.join();
      send_raw(p.peer, "h");
      const auto t0 = Clock::now();
      CHECK(read_str(server, Deadline::after(5s)) == "h");
      CHECK(seconds_since(t0) < 0.5);
    }
  });
}
