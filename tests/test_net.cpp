// net: TcpStream/TcpListener/UdpSocket, Unix sockets, StreamServer (addresses and DNS:
// test_net_names.cpp). Real
// sockets on 127.0.0.1; the suite runs on both engines (see tests/meson.build).
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;
using namespace ringlet;
using namespace ringlet::net;
using ringlet::test::in_scheduler;

namespace {

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

std::string pattern(std::size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// An echo handler: what comes in goes back, until end of stream.
void echo(TcpStream conn) {
  char buf[16384];
  while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
}

std::error_code code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::system_error& e) {
    return e.code();
  }
  return {};
}

}  // namespace

// --- TCP ------------------------------------------------------------------------------------

TEST_CASE("echo round trips from 1 byte to 1 MiB", "[net][tcp]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    CHECK(listener.local_address().port() != 0);
    auto server = spawn([&] {
      for (int i = 0; i < 2; ++i) spawn(echo, listener.accept(5s));
    });
    {
      auto c = TcpStream::connect(listener.local_address(), 5s);
      for (std::size_t size : {1, 100, 1000}) {
        const std::string out = pattern(size, static_cast<unsigned>(size));
        std::string in(size, '\0');
        c.write_all(out);
        CHECK(c.read_exact(in, Deadline::after(10s)) == size);
        CHECK((in == out));
      }
    }
    // By name this time; from 4 KiB up the echo cannot fit in the socket buffers one way
    // before the other side reads, so one fiber writes while this one reads.
    auto c = TcpStream::connect("127.0.0.1:" + std::to_string(listener.local_address().port()), 5s);
    for (std::size_t size : {std::size_t{4096}, std::size_t{65537}, std::size_t{1} << 20}) {
      INFO("size " << size);
      const std::string out = pattern(size, 7);
      std::string in(size, '\0');
      auto writer = spawn([&] { c.write_all(out, Deadline::after(10s)); });
      CHECK(c.read_exact(in, Deadline::after(10s)) == size);
      writer.get();
      CHECK((in == out));
    }
    c.close();
    server.get();
  });
}

TEST_CASE("vectored writes send every buffer in order", "[net][tcp]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    auto server = spawn([&] { echo(listener.accept(5s)); });
    auto c = TcpStream::connect(listener.local_address(), 5s);
    // 300 pieces (more than one sendmsg's batch) of varied sizes, some empty.
    std::vector<std::string> pieces;
    for (int i = 0; i < 300; ++i) pieces.push_back(pattern(static_cast<std::size_t>((i * 37) % 700), static_cast<unsigned>(i)));
    std::vector<ConstBuffer> bufs(pieces.begin(), pieces.end());
    std::string all;
    for (auto& p : pieces) all += p;
    auto writer = spawn([&] { c.writev_all(bufs, Deadline::after(10s)); });
    std::string in(all.size(), '\0');
    CHECK(c.read_exact(in, Deadline::after(10s)) == all.size());
    writer.get();
    CHECK((in == all));
    c.writev_all({std::string_view("head:"), std::string_view("body")});
    char small[9];
    CHECK(c.read_exact(small) == 9);
    CHECK(std::string(small, 9) == "head:body");
    c.shutdown();
    server.get();
  });
}

TEST_CASE("end of stream is a value; half-close keeps the other direction open", "[net][tcp]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    auto server = spawn([&] {
      auto s = listener.accept(5s);
      std::string got;
      char buf[100];
      while (std::size_t n = s.read_some(buf, Deadline::after(5s))) got.append(buf, n);
      // The client half-closed; we can still answer.
      s.write_all("got:" + got);
    });
    auto c = TcpStream::connect(listener.local_address(), 5s);
    c.write_all("hello");
    c.shutdown(Shutdown::Write);
    char buf[64];
    std::size_t n = c.read_exact({buf, sizeof buf}, Deadline::after(5s));  // ends early at EOF
    CHECK(std::string(buf, n) == "got:hello");
    CHECK(c.read_some(buf, Deadline::after(5s)) == 0);
    CHECK(c.read_some(buf, Deadline::after(5s)) == 0);  // and stays at the end
    server.get();
  });
}

TEST_CASE("read, accept and connect time out", "[net][tcp][timeout]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    auto t0 = Clock::now();
    std::error_code ec;
    auto none = listener.accept(Deadline::after(50ms), ec);
    CHECK(ec == std::errc::timed_out);
    CHECK_FALSE(none.is_open());
    CHECK(test::seconds_since(t0) >= 0.045);
    CHECK(code_of([&] { listener.accept(Deadline::after(10ms)); }) == std::errc::timed_out);

    auto c = TcpStream::connect(listener.local_address(), 5s);
    auto s = listener.accept(5s);
    char buf[8];
    t0 = Clock::now();
    c.read_some(buf, Deadline::after(50ms), ec);
    CHECK(ec == std::errc::timed_out);
    CHECK(test::seconds_since(t0) >= 0.045);
    // A Timeout scope is an exception, and the socket stays usable after either.
    CHECK_THROWS_AS(([&] {
                      Timeout t{20ms};
                      c.read_some(buf);
                    }()),
                    Timeout::Expired);
    s.write_all("x");
    CHECK(c.read_some(buf, Deadline::after(5s)) == 1);

    // A listener whose backlog is full leaves further connects hanging: they time out.
    auto tiny = TcpListener::bind("127.0.0.1:0", ListenOptions{.backlog = 1});
    std::vector<TcpStream> filled;
    std::error_code cec;
    for (int i = 0; i < 64 && !cec; ++i) {
      auto x = TcpStream::connect(tiny.local_address(), Deadline::after(200ms), cec);
      if (!cec) filled.push_back(std::move(x));
    }
    CHECK(cec == std::errc::timed_out);
  });
}

TEST_CASE("refused and unreachable addresses give clear errors", "[net][tcp]") {
  in_scheduler([] {
    std::uint16_t port;
    {
      auto l = TcpListener::bind("127.0.0.1:0");
      port = l.local_address().port();
    }  // closed: nothing listens there now
    const std::string addr = "127.0.0.1:" + std::to_string(port);
    try {
      TcpStream::connect(addr, 5s);
      FAIL("connected to a closed port");
    } catch (const std::system_error& e) {
      CHECK(e.code() == std::errc::connection_refused);
      CHECK_THAT(e.what(), Catch::Contains(addr));
    }
    // "localhost" may give ::1 and 127.0.0.1: each is tried, the error names the name.
    CHECK(code_of([&] { TcpStream::connect("localhost:" + std::to_string(port), 5s); }) ==
          std::errc::connection_refused);
    // An address with no route (IPv6 documentation prefix) or a black hole: the error says
    // which, or the deadline ends it.
    std::error_code ec;
    TcpStream::connect(Address::parse("[2001:db8::1]:9"), Deadline::after(300ms), ec);
    INFO(ec.message());
    CHECK((ec == std::errc::network_unreachable || ec == std::errc::host_unreachable ||
           ec == std::errc::timed_out || ec == std::errc::address_family_not_supported ||
           ec == std::errc::address_not_available));
    CHECK(code_of([] { TcpStream::connect("no-such-host.invalid:80", 5s); }).category() == dns_category());
  });
}

TEST_CASE("accept on a socket that cannot accept fails at once, without spinning", "[net][tcp]") {
  in_scheduler([] {
    auto udp = UdpSocket::bind("127.0.0.1:0");
    TcpListener wrong(udp.release());
    std::error_code ec;
    wrong.accept(Deadline::after(1s), ec);
    CHECK(ec == std::errc::operation_not_supported);
  });
}

TEST_CASE("connect by name tries each resolved address until one accepts", "[net][tcp][dns]") {
  in_scheduler([] {
    // Listening on IPv4 only: if localhost resolves to ::1 first, that attempt is refused
    // and 127.0.0.1 is tried next.
    auto l = TcpListener::bind("127.0.0.1:0");
    const auto all = resolve("localhost", l.local_address().port());
    INFO("localhost resolves to " << all.size() << " address(es), first " << all[0]);
    auto c = TcpStream::connect("localhost:" + std::to_string(l.local_address().port()), 5s);
    auto s = l.accept(5s);
    CHECK(c.peer_address() == l.local_address());
    CHECK(c.local_address() == s.peer_address());
  });
}

TEST_CASE("a peer that resets in the middle of a write gives an error, never SIGPIPE", "[net][tcp]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    auto c = TcpStream::connect(listener.local_address(), 5s);
    auto s = listener.accept(5s);
    // The writer sends 64 MiB; the peer reads a little, then resets the connection
    // (SO_LINGER 0 makes close send RST).
    auto writer = spawn([&] {
      const std::string chunk = pattern(1 << 20);
      std::error_code ec;
      for (int i = 0; i < 64 && !ec; ++i) c.write_all(chunk, Deadline::after(10s), ec);
      return ec;
    });
    char buf[4096];
    s.read_exact(buf, Deadline::after(5s));
    linger lg{1, 0};
    REQUIRE(setsockopt(s.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
    s.close();
    auto ec = writer.get();
    INFO(ec.message());
    CHECK((ec == std::errc::connection_reset || ec == std::errc::broken_pipe));
    // Reading the reset side reports it too (or end of stream, once reported).
    std::error_code rec;
    c.read_some(buf, Deadline::after(1s), rec);
    CHECK(rec != std::errc::timed_out);
  });
}

TEST_CASE("closing a socket wakes the fibers blocked on it with an error", "[net][tcp]") {
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    auto c = TcpStream::connect(listener.local_address(), 5s);
    auto s = listener.accept(5s);
    std::vector<Greenlet<std::error_code>> readers;
    for (int i = 0; i < 3; ++i)
      readers.push_back(spawn([&] {
        char buf[16];
        std::error_code ec;
        c.read_some(buf, Deadline::after(10s), ec);
        return ec;
      }));
    auto acceptor = spawn([&] {
      std::error_code ec;
      listener.accept(Deadline::after(10s), ec);
      return ec;
    });
    ringlet::sleep(20ms);  // all parked in the reactor
    auto t0 = Clock::now();
    c.close();
    listener.close();
    for (auto& r : readers) CHECK(r.get() == std::errc::bad_file_descriptor);
    CHECK(acceptor.get() == std::errc::bad_file_descriptor);
    CHECK(test::seconds_since(t0) < 1.0);
    // Using it afterwards is the same clear error.
    char buf[4];
    CHECK_THROWS_WITH(c.read_some(buf), Catch::Contains("closed"));
  });
}

TEST_CASE("10 000 connect/close cycles leave no fd, fiber or memory behind", "[net][tcp][leak]") {
  const int fds_before = open_fds();
  in_scheduler([] {
    auto listener = TcpListener::bind("127.0.0.1:0");
    const Address addr = listener.local_address();
    std::size_t served = 0;
    StreamServer server{std::move(listener), [&](TcpStream conn) {
                          char b[8];
                          std::size_t n = conn.read_some(b, Deadline::after(5s));
                          if (n) conn.write_all({b, n});
                          ++served;
                        }};
    server.start();
    auto cycle = [&](int count) {
      for (int i = 0; i < count; ++i) {
        auto c = TcpStream::connect(addr, 5s);
        c.write_all("p");
        char b[1];
        REQUIRE(c.read_exact(b, Deadline::after(5s)) == 1);
      }
    };
    cycle(1000);  // warm up: stacks, buffers
    ringlet::sleep(10ms);
    const long rss_before = static_cast<long>(test::rss_kib());
    cycle(9000);
    ringlet::sleep(10ms);
    const long rss_after = static_cast<long>(test::rss_kib());
    server.stop(1s);
    CHECK(served == 10000);
    CHECK(server.stats().accepted == 10000);
    CHECK(server.stats().active == 0);
    INFO("RSS before " << rss_before << " KiB, after " << rss_after << " KiB");
#if defined(__SANITIZE_ADDRESS__)
    // AddressSanitizer's quarantine holds freed memory back on purpose: RSS grows by design.
    WARN("RSS growth not checked under AddressSanitizer (" << rss_after - rss_before << " KiB)");
#else
    CHECK(rss_after - rss_before < 4096);
#endif
  });
  CHECK(open_fds() == fds_before);
}

TEST_CASE("a slow client sending one byte a second does not delay the others", "[net][tcp]") {
  in_scheduler([] {
    StreamServer server{"127.0.0.1:0", echo};
    server.start();
    auto slow = spawn([&] {
      auto c = TcpStream::connect(server.address(), 5s);
      for (int i = 0; i < 2; ++i) {
        c.write_all("s");
        char b;
        c.read_exact({&b, 1}, Deadline::after(5s));
        ringlet::sleep(1s);
      }
    });
    ringlet::sleep(10ms);
    auto t0 = Clock::now();
    std::vector<Greenlet<void>> fast;
    for (int k = 0; k < 20; ++k)
      fast.push_back(spawn([&] {
        auto c = TcpStream::connect(server.address(), 5s);
        for (int i = 0; i < 50; ++i) {
          c.write_all("ping");
          char b[4];
          REQUIRE(c.read_exact(b, Deadline::after(5s)) == 4);
        }
      }));
    joinall(fast);
    for (auto& f : fast) f.get();
    CHECK(test::seconds_since(t0) < 0.9);  // well inside the slow client's first second
    slow.get();
    server.stop();
  });
}

TEST_CASE("StreamServer at its connection limit pauses accepting and drops nothing", "[net][server]") {
  in_scheduler([] {
    int running = 0, peak = 0;
    Event release;
    StreamServer server{"127.0.0.1:0",
                        [&](TcpStream conn) {
                          peak = std::max(peak, ++running);
                          release.wait(Deadline::after(10s));
                          conn.write_all("ok");
                          --running;
                        },
                        ServerOptions{.max_connections = 3}};
    server.start();
    std::vector<Greenlet<std::string>> clients;
    for (int i = 0; i < 8; ++i)
      clients.push_back(spawn([&] {
        auto c = TcpStream::connect(server.address(), 5s);
        char b[2];
        std::size_t n = c.read_exact(b, Deadline::after(10s));
        return std::string(b, n);
      }));
    ringlet::sleep(100ms);
    CHECK(running == 3);                      // the rest wait in the backlog
    CHECK(server.stats().accepted == 3);
    release.set();
    for (auto& c : clients) CHECK(c.get() == "ok");
    CHECK(peak == 3);
    CHECK(server.stats().accepted == 8);
    CHECK(server.stats().peak_active == 3);
    server.stop();
  });
}

TEST_CASE("StreamServer: graceful stop waits for handlers up to the grace, then kills", "[net][server]") {
  in_scheduler([] {
    int finished = 0, killed = 0;
    StreamServer server{"127.0.0.1:0", [&](TcpStream conn) {
                          char b[1];
                          try {
                            std::size_t n = conn.read_some(b);
                            ringlet::sleep(n ? 20ms : 0ms);
                            conn.write_all("done");
                            ++finished;
                          } catch (const GreenletExit&) {
                            ++killed;
                            throw;
                          }
                        }};
    server.start();
    auto quick = TcpStream::connect(server.address(), 5s);
    auto stuck = TcpStream::connect(server.address(), 5s);
    quick.write_all("x");  // finishes within the grace
    ringlet::sleep(5ms);   // both handlers running
    auto t0 = Clock::now();
    server.stop(200ms);
    const double took = test::seconds_since(t0);
    CHECK(finished == 1);
    CHECK(killed == 1);
    CHECK(took >= 0.19);
    CHECK(took < 1.0);
    CHECK_FALSE(server.serving());
    char b[8];
    CHECK(quick.read_exact(b, Deadline::after(5s)) == 4);
    CHECK(stuck.read_some(b, Deadline::after(5s)) == 0);  // closed by the kill
    std::error_code ec;
    TcpStream::connect(server.address(), Deadline::after(1s), ec);
    CHECK(ec == std::errc::connection_refused);  // no longer listening
    server.stop();  // idempotent
  });
}

TEST_CASE("StreamServer: a handler's exception is logged with the peer and ends only its connection", "[net][server]") {
  test::StderrCapture err;
  in_scheduler([] {
    StreamServer server{"127.0.0.1:0", [](TcpStream& conn, const Address&) {
                          char b[16];
                          std::size_t n = conn.read_some(b, Deadline::after(5s));
                          if (std::string_view(b, n) == "boom") throw std::runtime_error("handler blew up");
                          conn.write_all({b, n});
                        }};
    server.start();
    auto bad = TcpStream::connect(server.address(), 5s);
    auto good = TcpStream::connect(server.address(), 5s);
    bad.write_all("boom");
    char b[16];
    CHECK(bad.read_some(b, Deadline::after(5s)) == 0);  // closed by the server
    good.write_all("fine");
    CHECK(good.read_exact({b, 4}, Deadline::after(5s)) == 4);
    CHECK(server.stats().handler_errors == 1);
    CHECK(server.stats().active <= 1);
    const Address bad_local = bad.local_address();
    server.stop();
    (void)bad_local;
  });
  const std::string text = err.text();
  CHECK_THAT(text, Catch::Contains("handler blew up"));
  CHECK_THAT(text, Catch::Contains("connection from 127.0.0.1:"));
}

TEST_CASE("StreamServer backs off when accept runs out of descriptors", "[net][server]") {
  auto r = test::in_child([] {
    int code = 0;
    ringlet::run([&] {
      StreamServer server{"127.0.0.1:0", echo};
      server.start();
      // Leave a few descriptors free, then take them with idle connections.
      rlimit rl{};
      getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = static_cast<rlim_t>(open_fds() + 12);
      setrlimit(RLIMIT_NOFILE, &rl);
      std::vector<TcpStream> conns;
      std::error_code ec;
      for (int i = 0; i < 40; ++i) {
        auto c = TcpStream::connect(server.address(), Deadline::after(100ms), ec);
        if (ec) break;
        conns.push_back(std::move(c));
      }
      ringlet::sleep(200ms);
      const auto errors = server.stats().accept_errors;
      // Backing off: at most a few dozen attempts in 200 ms, not a spin of thousands.
      if (errors == 0 || errors > 60) code = 1;
      std::fprintf(stderr, "accept errors in 200 ms: %llu\n", static_cast<unsigned long long>(errors));
      conns.resize(2);  // give descriptors back: the server recovers
      ringlet::sleep(300ms);
      auto c = TcpStream::connect(server.address(), 2s);
      c.write_all("ok");
      char b[2];
      if (c.read_exact(b, Deadline::after(2s)) != 2) code = 2;
      conns.clear();
      c.close();
      server.stop(0s);
    });
    _exit(code);
  });
  INFO(r.err);
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK_THAT(r.err, Catch::Contains("Too many open files; backing off"));
  CHECK_THAT(r.err, Catch::Contains("accepting again"));
}

// --- Unix and UDP -----------------------------------------------------------------------------

TEST_CASE("Unix stream sockets: a path, a stale file replaced, the file removed on close", "[net][unix]") {
  in_scheduler([] {
    const std::string path = "/tmp/ringlet-test-" + std::to_string(getpid()) + ".sock";
    ::unlink(path.c_str());
    {
      // A file left by a dead server: a socket nobody listens on.
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      auto a = Address::parse(path);
      REQUIRE(::bind(fd, a.data(), a.size()) == 0);
      ::close(fd);
    }
    {
      StreamServer server{path, echo};
      server.start();
      auto c = TcpStream::connect(path, 5s);
      c.write_all("over unix");
      char b[9];
      CHECK(c.read_exact(b, Deadline::after(5s)) == 9);
      CHECK(std::string(b, 9) == "over unix");
      CHECK(code_of([&] { c.set_nodelay(); }) == std::errc::operation_not_supported);
      server.stop();
    }
    struct stat st;
    CHECK(::stat(path.c_str(), &st) != 0);  // removed with the listener

    auto l = TcpListener::bind("@ringlet-abstract-" + std::to_string(getpid()));
    auto c = TcpStream::connect(l.local_address(), 5s);
    auto s = l.accept(5s);
    s.write_all("abstract");
    char b[8];
    CHECK(c.read_exact(b, Deadline::after(5s)) == 8);
  });
}

TEST_CASE("UDP: send_to and recv_from, with a deadline", "[net][udp]") {
  in_scheduler([] {
    auto a = UdpSocket::bind("127.0.0.1:0");
    auto b = UdpSocket::bind("127.0.0.1:0");
    auto replier = spawn([&] {
      char buf[1500];
      Address from;
      std::size_t n = b.recv_from(buf, &from, Deadline::after(5s));
      b.send_to({buf, n}, from);
      return from;
    });
    CHECK(a.send_to("datagram", b.local_address()) == 8);
    char buf[64];
    Address from;
    std::size_t n = a.recv_from(buf, &from, Deadline::after(5s));
    CHECK(std::string(buf, n) == "datagram");
    CHECK(from == b.local_address());
    CHECK(replier.get() == a.local_address());
    std::error_code ec;
    a.recv_from(buf, nullptr, Deadline::after(30ms), ec);
    CHECK(ec == std::errc::timed_out);

    UdpSocket v6(Family::IPv6);
    CHECK(v6.is_open());
    a.connect(b.local_address());
    CHECK(a.send("x") == 1);
    CHECK(b.recv(buf, Deadline::after(5s)) == 1);
  });
}

TEST_CASE("sockets work on a plain thread too", "[net][thread]") {
  auto listener = TcpListener::bind("127.0.0.1:0");
  std::thread t([&] {
    auto s = listener.accept(Deadline::after(5s));
    char b[5];
    s.read_exact(b, Deadline::after(5s));
    s.write_all({b, 5});
  });
  auto c = TcpStream::connect(listener.local_address(), 5s);
  c.write_all("plain");
  char b[5];
  CHECK(c.read_exact(b, Deadline::after(5s)) == 5);
  CHECK(std::string(b, 5) == "plain");
  std::error_code ec;
  c.read_some(b, Deadline::after(20ms), ec);
  CHECK((ec == std::errc::timed_out || !ec));
  t.join();
}

TEST_CASE("SignalSet delivers a signal to a waiting fiber", "[net][signal]") {
  auto r = test::in_child([] {
    int code = 1;
    ringlet::run([&] {
      SignalSet sigs{SIGUSR1, SIGTERM};
      CHECK(sigs.wait(Deadline::after(10ms)) == 0);
      spawn([] { ::kill(getpid(), SIGTERM); });
      if (sigs.wait(Deadline::after(5s)) == SIGTERM) code = 0;
    });
    _exit(code);
  });
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
}
