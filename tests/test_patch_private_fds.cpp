// O_NONBLOCK known without asking (patch/state.hpp, kPrivate). A socket the hooks made
// (socket, accept) that no other process can hold and that has no duplicate is trusted to be
// as the program set it through fcntl or ioctl: its waits ask the kernel nothing (no F_GETFL
// per wait). Whatever could let someone else change the flag ends the trust: another process
// (fork, posix_spawn, system, a descriptor sent with SCM_RIGHTS) or a duplicate (dup, or one
// the hooks never saw made). Each case below makes a socket non-blocking in one of those ways
// and checks that a read answers EAGAIN at once, as natively, instead of waiting for data.
// (This executable links libringlet_patch.so: the plain calls below go through its hooks.)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "ringlet/fiber.hpp"
#include "ringlet/time.hpp"

extern char** environ;

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::seconds_since;

namespace {

// A connected TCP pair on 127.0.0.1, every descriptor made by a hooked call (private).
struct TcpPair {
  int listener = -1, client = -1, server = -1;
  sockaddr_in addr{};  // the listener's
  TcpPair() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t n = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &n) == 0);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(client >= 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    server = ::accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
  }
  ~TcpPair() {
    for (int fd : {listener, client, server})
      if (fd >= 0) ::close(fd);
  }
};

// A read on fd waits for the byte a fiber writes into `writer` 50 ms later: fd is blocking,
// and the patch knows it.
void read_waits(int fd, int writer) {
  auto late = ringlet::spawn([writer] {
    ringlet::sleep(50ms);
    CHECK(::write(writer, "w", 1) == 1);
  });
  char c = 0;
  const auto t0 = ringlet::Clock::now();
  CHECK(::read(fd, &c, 1) == 1);
  CHECK(c == 'w');
  CHECK(seconds_since(t0) >= 0.03);
  late.join();
}

// A read on fd answers EAGAIN at once. Were the patch to wait instead, a fiber's byte into
// `writer` after 2 s would end the wait (the read would return 1): the check fails, not hangs.
void read_answers_eagain(int fd, int writer) {
  auto rescue = ringlet::spawn([writer] {
    ringlet::sleep(2s);
    (void)::write(writer, "r", 1);
  });
  char c = 0;
  errno = 0;
  const auto t0 = ringlet::Clock::now();
  const ssize_t r = ::read(fd, &c, 1);
  const int e = errno;
  const double took = seconds_since(t0);
  rescue.kill();
  CHECK(r == -1);
  CHECK(e == EAGAIN);
  CHECK(took < 1.0);
}

// fd's open file made non-blocking by a raw system call, which no hook sees.
void raw_set_nonblocking(int fd) { REQUIRE(::syscall(SYS_fcntl, fd, F_SETFL, O_RDWR | O_NONBLOCK) == 0); }

void reap(pid_t pid) {
  int status = -1;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// A python3 one-liner that makes descriptor fd (inherited) non-blocking.
std::string python_set_nonblocking(int fd) {
  return "import fcntl, os; fcntl.fcntl(" + std::to_string(fd) + ", fcntl.F_SETFL, os.O_RDWR | os.O_NONBLOCK)";
}

bool have_python() { return std::system("python3 -c pass >/dev/null 2>&1") == 0; }

// A one-byte message with room for one descriptor (SCM_RIGHTS): to send fd, or to receive.
struct FdMessage {
  char byte = 'f';
  iovec io{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  explicit FdMessage(int fd = -1) {
    m.msg_iov = &io;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (fd < 0) return;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  FdMessage(const FdMessage&) = delete;  // io and m point into it
  // The descriptor a received message carried, or -1.
  int fd() {
    const cmsghdr* c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
  }
};

// The descriptor a message on `via` carries (raw system call: for a forked child), or -1.
int raw_receive_fd(int via) {
  FdMessage in;
  return ::syscall(SYS_recvmsg, via, &in.m, 0) == 1 ? in.fd() : -1;
}

}  // namespace

TEST_CASE("patch, private socket: O_NONBLOCK set and cleared through fcntl and ioctl is known", "[patch][private]") {
  in_scheduler([] {
    TcpPair p;
    read_waits(p.server, p.client);
    REQUIRE(::fcntl(p.server, F_SETFL, O_RDWR | O_NONBLOCK) == 0);
    read_answers_eagain(p.server, p.client);
    REQUIRE(::fcntl(p.server, F_SETFL, O_RDWR) == 0);
    read_waits(p.server, p.client);
    int on = 1, off = 0;
    REQUIRE(::ioctl(p.server, FIONBIO, &on) == 0);
    read_answers_eagain(p.server, p.client);
    REQUIRE(::ioctl(p.server, FIONBIO, &off) == 0);
    read_waits(p.server, p.client);
    // Made non-blocking at birth (accept4's SOCK_NONBLOCK).
    const int c2 = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(c2 >= 0);
    REQUIRE(::connect(c2, reinterpret_cast<sockaddr*>(&p.addr), sizeof p.addr) == 0);
    const int s2 = ::accept4(p.listener, nullptr, nullptr, SOCK_NONBLOCK);
    REQUIRE(s2 >= 0);
    read_answers_eagain(s2, c2);
    ::close(s2);
    ::close(c2);
  });
}

TEST_CASE("patch, private socket: made non-blocking by a forked child", "[patch][private]") {
  in_scheduler([] {
    TcpPair p;
    read_waits(p.server, p.client);  // trusted from here on
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const bool ok = ::syscall(SYS_fcntl, p.server, F_SETFL, O_RDWR | O_NONBLOCK) == 0;
      ::_exit(ok ? 0 : 1);
    }
    reap(pid);
    read_answers_eagain(p.server, p.client);
  });
}

TEST_CASE("patch, private socket: made non-blocking by a program started with posix_spawnp", "[patch][private]") {
  if (!have_python()) RINGLET_SKIP("python3 is not installed");
  in_scheduler([] {
    TcpPair p;
    read_waits(p.server, p.client);
    const std::string code = python_set_nonblocking(p.server);
    char* argv[] = {const_cast<char*>("python3"), const_cast<char*>("-c"), const_cast<char*>(code.c_str()), nullptr};
    pid_t pid = -1;
    REQUIRE(::posix_spawnp(&pid, "python3", nullptr, nullptr, argv, environ) == 0);
    reap(pid);
    read_answers_eagain(p.server, p.client);
  });
}

TEST_CASE("patch, private socket: made non-blocking by a command run with system", "[patch][private]") {
  if (!have_python()) RINGLET_SKIP("python3 is not installed");
  in_scheduler([] {
    TcpPair p;
    read_waits(p.server, p.client);
    const std::string line = "python3 -c '" + python_set_nonblocking(p.server) + "'";
    CHECK(std::system(line.c_str()) == 0);
    read_answers_eagain(p.server, p.client);
  });
}

TEST_CASE("patch, private socket: made non-blocking by the process it was sent to (SCM_RIGHTS)", "[patch][private]") {
  in_scheduler([] {
    int u[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
    // The child exists before the socket does: its fork ends no trust in it.
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int fd = raw_receive_fd(u[1]);
      const bool ok = fd >= 0 && ::syscall(SYS_fcntl, fd, F_SETFL, O_RDWR | O_NONBLOCK) == 0;
      const char ack = ok ? 'y' : 'n';
      ::syscall(SYS_write, u[1], &ack, 1);
      ::_exit(ok ? 0 : 1);
    }
    {
      TcpPair p;
      read_waits(p.server, p.client);
      FdMessage out(p.server);
      REQUIRE(::sendmsg(u[0], &out.m, 0) == 1);
      char ack = 0;
      CHECK(::read(u[0], &ack, 1) == 1);
      CHECK(ack == 'y');
      reap(pid);
      read_answers_eagain(p.server, p.client);
    }
    ::close(u[0]);
    ::close(u[1]);
  });
}

TEST_CASE("patch, private socket: made non-blocking through a duplicate", "[patch][private]") {
  in_scheduler([] {
    TcpPair p;
    read_waits(p.server, p.client);
    SECTION("made by dup, flag set by a raw system call") {
      const int d = ::dup(p.server);
      REQUIRE(d >= 0);
      raw_set_nonblocking(d);
      read_answers_eagain(p.server, p.client);
      ::close(d);
    }
    SECTION("made by a raw system call, flag set through fcntl") {
      const int d = static_cast<int>(::syscall(SYS_dup, p.server));
      REQUIRE(d >= 0);
      REQUIRE(::fcntl(d, F_SETFL, O_RDWR | O_NONBLOCK) == 0);
      read_answers_eagain(p.server, p.client);
      ::close(d);
    }
    SECTION("made by a raw system call, flag set through ioctl") {
      const int d = static_cast<int>(::syscall(SYS_dup, p.server));
      REQUIRE(d >= 0);
      int on = 1;
      REQUIRE(::ioctl(d, FIONBIO, &on) == 0);
      read_answers_eagain(p.server, p.client);
      ::close(d);
    }
  });
}

TEST_CASE("patch, private socket: a received descriptor is not taken for the private one its number had", "[patch][private]") {
  in_scheduler([] {
    int u[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, u) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Sends one end of a new pair, then makes that end non-blocking: the same open file.
      int s[2] = {-1, -1};
      bool ok = ::syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, s) == 0;
      FdMessage out(s[0]);
      ok = ok && ::syscall(SYS_sendmsg, u[1], &out.m, 0) == 1;
      char go = 0;
      ok = ok && ::syscall(SYS_read, u[1], &go, 1) == 1;  // the parent has it
      ok = ok && ::syscall(SYS_fcntl, s[0], F_SETFL, O_RDWR | O_NONBLOCK) == 0;
      const char ack = ok ? 'y' : 'n';
      ::syscall(SYS_write, u[1], &ack, 1);
      char end = 0;
      ::syscall(SYS_read, u[1], &end, 1);  // keeps s[1] open until the parent is done
      ::_exit(ok ? 0 : 1);
    }
    TcpPair p;
    read_waits(p.server, p.client);  // p.server's entry: private, trusted blocking
    // Fill every free number below p.server, then close p.server where no hook sees it:
    // its number is the lowest free one, which the received descriptor takes, and its entry
    // still says private and blocking.
    std::vector<int> fillers;
    for (;;) {
      const int f = ::open("/dev/null", O_RDONLY);
      REQUIRE(f >= 0);
      if (f > p.server) {
        ::close(f);
        break;
      }
      fillers.push_back(f);
    }
    const int old = p.server;
    REQUIRE(::syscall(SYS_close, old) == 0);
    p.server = -1;
    FdMessage in;
    REQUIRE(::recvmsg(u[0], &in.m, 0) == 1);
    const int got = in.fd();
    REQUIRE(got == old);
    for (int f : fillers) ::close(f);
    CHECK(::write(u[0], "g", 1) == 1);
    char ack = 0;
    CHECK(::read(u[0], &ack, 1) == 1);
    CHECK(ack == 'y');
    read_answers_eagain(got, u[0]);  // (the rescue byte would go to the child: harmless)
    CHECK(::write(u[0], "e", 1) == 1);
    reap(pid);
    ::close(got);
    ::close(u[0]);
    ::close(u[1]);
  });
}
