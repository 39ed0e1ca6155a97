// The read hook's attempt hint (patch/io.cpp, one_op_attempts): on io_uring, once a
// descriptor's reads keep finding nothing at their non-blocking attempt (ping-pong), the
// next reads skip it and go straight to the ring. Whatever path a read takes, its answer
// must be the kernel's: the data, EAGAIN once the file was made non-blocking behind the
// patch's back, SO_RCVTIMEO's EAGAIN, EINTR from a handler without SA_RESTART. Each check
// below comes after a ping-pong that leaves the descriptor's reads skipping their attempt
// (on epoll nothing is skipped and the same answers are expected).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "helpers.hpp"
#include "ringlet/patch.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;
using ringlet::test::Ticker;

namespace {

struct SockPair {
  int a = -1, b = -1;
  SockPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~SockPair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

// n round trips: a fiber writes "ping i" on b and reads the answer; the caller's reads on a
// each find nothing at first (the writer writes only after the previous answer), so they
// wait every time; each message is checked.
void ping_pong(SockPair& p, int n) {
  auto peer = ringlet::spawn([&] {
    for (int i = 0; i < n; ++i) {
      const std::string m = "ping " + std::to_string(i);
      REQUIRE(::write(p.b, m.data(), m.size()) == static_cast<ssize_t>(m.size()));
      char r[32];
      REQUIRE(::read(p.b, r, sizeof r) == static_cast<ssize_t>(m.size()));
      REQUIRE(std::string(r, m.size()) == m);
    }
  });
  for (int i = 0; i < n; ++i) {
    char buf[32];
    const ssize_t k = ::read(p.a, buf, sizeof buf);
    REQUIRE(k > 0);
    REQUIRE(std::string(buf, static_cast<std::size_t>(k)) == "ping " + std::to_string(i));
    REQUIRE(::write(p.a, buf, static_cast<std::size_t>(k)) == k);
  }
  peer.join();
}

extern "C" void attempt_test_on_alarm(int) {}

}  // namespace

TEST_CASE("patch: reads that keep waiting answer as the kernel's, whichever way they try", "[patch]") {
  in_scheduler([] {
    SockPair p;
    ping_pong(p, 40);
    char buf[64];
    // Each check twice, after ping-pongs of different lengths: the hint every so often lets
    // a read attempt again (every 16th), and the two checks' reads are 7 reads apart, so at
    // least one of them skips its attempt on io_uring.
    for (int round = 0; round < 2; ++round) {
      // Data already there when the read is called: all of it, in order.
      ping_pong(p, 5 + round);
      REQUIRE(::write(p.b, "ready", 5) == 5);
      REQUIRE(::read(p.a, buf, sizeof buf) == 5);
      CHECK(std::string(buf, 5) == "ready");
    }
    for (int round = 0; round < 2; ++round) {
      // A read that waits, for data written later by another fiber, while a ticker runs.
      ping_pong(p, 5 + round);
      Ticker t;
      auto w = ringlet::spawn([&] {
        ringlet::sleep(50ms);
        REQUIRE(::write(p.b, "late", 4) == 4);
      });
      const auto t0 = ringlet::Clock::now();
      REQUIRE(::read(p.a, buf, sizeof buf) == 4);
      CHECK(std::string(buf, 4) == "late");
      CHECK(seconds_since(t0) >= 0.045);
      CHECK(t.ticks.load() >= 2);
      w.join();
    }
    for (int round = 0; round < 2; ++round) {
      // SO_RCVTIMEO: EAGAIN at the timeout.
      ping_pong(p, 5 + round);
      timeval tv{0, 60'000};
      REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
      const auto t0 = ringlet::Clock::now();
      errno = 0;
      CHECK(::recv(p.a, buf, sizeof buf, 0) == -1);
      CHECK(errno == EAGAIN);
      CHECK(seconds_since(t0) >= 0.055);
      CHECK(seconds_since(t0) < 1.0);
      timeval none{0, 0};
      REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none) == 0);
    }
    for (int round = 0; round < 2; ++round) {
      // A handler without SA_RESTART: EINTR.
      ping_pong(p, 5 + round);
      struct sigaction sa {}, old {};
      sa.sa_handler = &attempt_test_on_alarm;
      sigemptyset(&sa.sa_mask);
      REQUIRE(::sigaction(SIGALRM, &sa, &old) == 0);
      itimerval it{};
      it.it_value.tv_usec = 50'000;
      REQUIRE(::setitimer(ITIMER_REAL, &it, nullptr) == 0);
      errno = 0;
      CHECK(::read(p.a, buf, sizeof buf) == -1);
      CHECK(errno == EINTR);
      REQUIRE(::sigaction(SIGALRM, &old, nullptr) == 0);
    }
    for (int round = 0; round < 2; ++round) {
      // Made non-blocking behind the patch's back (a dup and the raw system call): EAGAIN
      // at once, not a wait; and the data once it is there. Then blocking again (through the
      // hook, which the patch sees).
      ping_pong(p, 5 + round);
      const int d = ::dup(p.a);
      REQUIRE(d >= 0);
      REQUIRE(::syscall(SYS_fcntl, d, F_SETFL, O_RDWR | O_NONBLOCK) == 0);
      const auto t0 = ringlet::Clock::now();
      errno = 0;
      CHECK(::read(p.a, buf, sizeof buf) == -1);
      CHECK(errno == EAGAIN);
      CHECK(seconds_since(t0) < 0.05);
      REQUIRE(::write(p.b, "nb", 2) == 2);
      CHECK(::read(p.a, buf, sizeof buf) == 2);
      ::close(d);
      REQUIRE(::fcntl(p.a, F_SETFL, O_RDWR) == 0);
    }
  });
}

TEST_CASE("patch: writes that keep finding a full buffer still write everything", "[patch]") {
  in_scheduler([] {
    SockPair p;
    int small = 4096;
    REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    const std::size_t size = 1 << 20;
    std::string out(size, '\0'), in(size, '\0');
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(i * 13);
    // A slow reader: every write beyond the first few finds the buffer full, so the
    // writes' attempts keep answering EAGAIN.
    auto reader = ringlet::spawn([&] {
      std::size_t got = 0;
      while (got < size) {
        ringlet::sleep(100us);
        const ssize_t n = ::read(p.b, &in[got], std::min<std::size_t>(size - got, 8192));
        REQUIRE(n > 0);
        got += static_cast<std::size_t>(n);
      }
    });
    for (std::size_t off = 0; off < size; off += 2048)
      REQUIRE(::write(p.a, out.data() + off, 2048) == 2048);
    reader.join();
    CHECK(in == out);
  });
}
