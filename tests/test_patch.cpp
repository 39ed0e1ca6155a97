// The patch layer in-process: this executable links libringlet_patch.so, so the plain libc
// calls below (::read, ::poll, ::usleep, libcurl's own calls...) go through its hooks. Each
// test checks both the libc-visible answer (return value, errno, data) and that the call
// really went through the reactor (the other fibers ran meanwhile; the patch's counters).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "http_test_server.hpp"
#include "ringlet/net.hpp"
#include "ringlet/patch.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::Ticker;
using ringlet::test::seconds_since;
namespace patch = ringlet::patch;

namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};


std::uint64_t waited(const char* call) { return patch::stats(call).waited; }

struct CountingScope {
  CountingScope() {
    patch::set_counting(true);
    patch::reset_stats();
  }
  ~CountingScope() { patch::set_counting(false); }
};

extern "C" void on_alarm(int) {}

void set_alarm_handler(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = &on_alarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  REQUIRE(::sigaction(SIGALRM, &sa, nullptr) == 0);
}

void alarm_in(std::chrono::milliseconds ms) {
  itimerval it{};
  it.it_value.tv_sec = static_cast<time_t>(ms.count() / 1000);
  it.it_value.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  REQUIRE(::setitimer(ITIMER_REAL, &it, nullptr) == 0);
}

}  // namespace

TEST_CASE("patch: read and write on blocking sockets park the fiber, not the thread", "[patch]") {
  CountingScope counting;
  in_scheduler([] {
    Pair p;
    Ticker t;
    auto writer = ringlet::spawn([&] {
      ::usleep(100'000);  // patched: a fiber sleep
      REQUIRE(::write(p.b, "hello", 5) == 5);
    });
    char buf[16];
    const auto t0 = ringlet::Clock::now();
    ssize_t n = ::read(p.a, buf, sizeof buf);
    REQUIRE(n == 5);
    CHECK(std::string(buf, 5) == "hello");
    CHECK(seconds_since(t0) >= 0.09);
    CHECK(t.ticks.load() >= 5);  // the ticker ran while read waited
    writer.join();
  });
  CHECK(waited("read") >= 1);
  CHECK(waited("usleep") >= 1);
}

TEST_CASE("patch: a blocking write on a stream socket writes everything, as unpatched", "[patch]") {
  in_scheduler([] {
    Pair p;
    const std::size_t size = 4 << 20;
    std::vector<char> out(size), in(size);
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(i * 7);
    auto reader = ringlet::spawn([&] {
      std::size_t got = 0;
      while (got < size) {
        ssize_t n = ::read(p.b, in.data() + got, std::min<std::size_t>(size - got, 100'000));
        REQUIRE(n > 0);
        got += static_cast<std::size_t>(n);
      }
    });
    CHECK(::write(p.a, out.data(), size) == static_cast<ssize_t>(size));  // one call, all of it
    reader.join();
    CHECK(in == out);
    // writev and sendmsg the same.
    iovec v[2] = {{out.data(), size / 2}, {out.data() + size / 2, size / 2}};
    auto reader2 = ringlet::spawn([&] {
      std::size_t got = 0;
      while (got < size) {
        ssize_t n = ::recv(p.b, in.data() + got, size - got, 0);
        REQUIRE(n > 0);
        got += static_cast<std::size_t>(n);
      }
    });
    CHECK(::writev(p.a, v, 2) == static_cast<ssize_t>(size));
    reader2.join();
    CHECK(in == out);
  });
}

TEST_CASE("patch: a descriptor the program made non-blocking keeps EAGAIN", "[patch]") {
  in_scheduler([] {
    Pair p;
    int fl = ::fcntl(p.a, F_GETFL);
    REQUIRE(::fcntl(p.a, F_SETFL, fl | O_NONBLOCK) == 0);
    char c;
    const auto t0 = ringlet::Clock::now();
    errno = 0;
    CHECK(::read(p.a, &c, 1) == -1);
    CHECK(errno == EAGAIN);
    CHECK(::recv(p.a, &c, 1, 0) == -1);
    CHECK(errno == EAGAIN);
    int on = 1;
    REQUIRE(::ioctl(p.b, FIONBIO, &on) == 0);
    CHECK(::read(p.b, &c, 1) == -1);
    CHECK(errno == EAGAIN);
    // MSG_DONTWAIT on a blocking socket too.
    int off = 0;
    REQUIRE(::ioctl(p.b, FIONBIO, &off) == 0);
    CHECK(::recv(p.b, &c, 1, MSG_DONTWAIT) == -1);
    CHECK(errno == EAGAIN);
    CHECK(seconds_since(t0) < 0.05);
    // Made non-blocking behind the patch's back (through a dup): still EAGAIN, not a wait.
    int d = ::dup(p.b);
    REQUIRE(::syscall(SYS_fcntl, d, F_SETFL, O_RDWR | O_NONBLOCK) == 0);
    CHECK(::read(p.b, &c, 1) == -1);
    CHECK(errno == EAGAIN);
    ::close(d);
  });
}

TEST_CASE("patch: SO_RCVTIMEO and SO_SNDTIMEO are honoured as timeouts", "[patch]") {
  in_scheduler([] {
    Pair p;
    Ticker t;
    timeval tv{0, 100'000};
    REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0);
    char c;
    const auto t0 = ringlet::Clock::now();
    errno = 0;
    CHECK(::recv(p.a, &c, 1, 0) == -1);
    CHECK(errno == EAGAIN);
    const double took = seconds_since(t0);
    CHECK(took >= 0.09);
    CHECK(took < 1.0);
    CHECK(t.ticks.load() >= 5);
    // A send into a full buffer times out the same way, after writing what fit.
    REQUIRE(::setsockopt(p.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
    std::vector<char> big(8 << 20);
    ssize_t n = ::send(p.a, big.data(), big.size(), 0);
    CHECK(n > 0);
    CHECK(n < static_cast<ssize_t>(big.size()));
  });
}

TEST_CASE("patch: closing a descriptor wakes the fiber waiting on it with EBADF", "[patch]") {
  in_scheduler([] {
    Pair p;
    int fd = p.a;
    auto closer = ringlet::spawn([&] {
      ringlet::sleep(30ms);
      ::close(fd);
      p.a = -1;
    });
    char c;
    errno = 0;
    CHECK(::read(fd, &c, 1) == -1);
    CHECK(errno == EBADF);
    closer.join();
  });
}

TEST_CASE("patch: a signal handler interrupts a parked call with EINTR, or restarts it", "[patch]") {
  in_scheduler([] {
    Pair p;
    char c;
    // Without SA_RESTART: EINTR, as a blocked read(2) answers.
    set_alarm_handler(false);
    alarm_in(50ms);
    auto t0 = ringlet::Clock::now();
    errno = 0;
    CHECK(::read(p.a, &c, 1) == -1);
    CHECK(errno == EINTR);
    CHECK(seconds_since(t0) < 1.0);
    // Sleeps and polls are never restarted.
    alarm_in(50ms);
    timespec req{2, 0}, rem{};
    t0 = ringlet::Clock::now();
    CHECK(::nanosleep(&req, &rem) == -1);
    CHECK(errno == EINTR);
    CHECK(seconds_since(t0) < 1.0);
    CHECK(rem.tv_sec >= 1);
    alarm_in(50ms);
    pollfd pf{p.a, POLLIN, 0};
    CHECK(::poll(&pf, 1, 2000) == -1);
    CHECK(errno == EINTR);
    // With SA_RESTART the read goes on waiting and gets its byte.
    set_alarm_handler(true);
    alarm_in(30ms);
    auto writer = ringlet::spawn([&] {
      ringlet::sleep(120ms);
      REQUIRE(::write(p.b, "x", 1) == 1);
    });
    t0 = ringlet::Clock::now();
    CHECK(::read(p.a, &c, 1) == 1);
    CHECK(seconds_since(t0) >= 0.1);
    writer.join();
    std::signal(SIGALRM, SIG_DFL);
  });
}

TEST_CASE("patch: sigaction shows the program its own handler", "[patch]") {
  set_alarm_handler(false);
  struct sigaction cur {};
  REQUIRE(::sigaction(SIGALRM, nullptr, &cur) == 0);
  CHECK(cur.sa_handler == &on_alarm);
  CHECK((cur.sa_flags & SA_RESTART) == 0);
  CHECK((cur.sa_flags & SA_SIGINFO) == 0);
  REQUIRE(std::signal(SIGALRM, SIG_DFL) == &on_alarm);
  REQUIRE(::sigaction(SIGALRM, nullptr, &cur) == 0);
  CHECK(cur.sa_handler == SIG_DFL);
}

TEST_CASE("patch: sleeps on fibers run side by side", "[patch]") {
  CountingScope counting;
  in_scheduler([] {
    const auto t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < 20; ++i) {
      gs.push_back(ringlet::spawn([i] {
        switch (i % 4) {
          case 0: ::usleep(200'000); break;
          case 1: {
            timespec ts{0, 200'000'000};
            ::nanosleep(&ts, nullptr);
            break;
          }
          case 2: {
            timespec now;
            ::clock_gettime(CLOCK_MONOTONIC, &now);
            now.tv_nsec += 200'000'000;
            if (now.tv_nsec >= 1'000'000'000) now.tv_sec += 1, now.tv_nsec -= 1'000'000'000;
            CHECK(::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, nullptr) == 0);
            break;
          }
          default: {
            pollfd none{};
            CHECK(::poll(&none, 0, 200) == 0);
          }
        }
      }));
    }
    ringlet::joinall(gs);
    const double took = seconds_since(t0);
    CHECK(took >= 0.19);
    CHECK(took < 1.0);  // serially it would be 4 s
  });
  CHECK(waited("usleep") == 5);
  CHECK(waited("nanosleep") == 5);
  CHECK(waited("clock_nanosleep") == 5);
}

TEST_CASE("patch: poll, select and epoll_wait wait on the reactor", "[patch]") {
  CountingScope counting;
  in_scheduler([] {
    Pair p1, p2;
    Ticker t;
    auto writer = ringlet::spawn([&] {
      ringlet::sleep(60ms);
      REQUIRE(::write(p2.b, "y", 1) == 1);
    });
    pollfd fds[2] = {{p1.a, POLLIN, 0}, {p2.a, POLLIN, 0}};
    CHECK(::poll(fds, 2, 2000) == 1);
    CHECK(fds[0].revents == 0);
    CHECK((fds[1].revents & POLLIN) != 0);
    writer.join();
    char c;
    REQUIRE(::read(p2.a, &c, 1) == 1);
    // A timeout: 0 after about that long.
    auto t0 = ringlet::Clock::now();
    CHECK(::poll(fds, 2, 80) == 0);
    CHECK(seconds_since(t0) >= 0.07);
    // select, with the time left written back.
    writer = ringlet::spawn([&] {
      ringlet::sleep(50ms);
      REQUIRE(::write(p1.b, "z", 1) == 1);
    });
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p1.a, &rs);
    FD_SET(p2.a, &rs);
    timeval tv{2, 0};
    CHECK(::select(std::max(p1.a, p2.a) + 1, &rs, nullptr, nullptr, &tv) == 1);
    CHECK(FD_ISSET(p1.a, &rs));
    CHECK(!FD_ISSET(p2.a, &rs));
    CHECK(tv.tv_sec <= 1);
    writer.join();
    REQUIRE(::read(p1.a, &c, 1) == 1);
    FD_ZERO(&rs);
    FD_SET(p1.a, &rs);
    tv = {0, 60'000};
    t0 = ringlet::Clock::now();
    CHECK(::select(p1.a + 1, &rs, nullptr, nullptr, &tv) == 0);
    CHECK(!FD_ISSET(p1.a, &rs));
    CHECK(seconds_since(t0) >= 0.05);
    // A program's own epoll loop.
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(ep >= 0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = p2.a;
    REQUIRE(::epoll_ctl(ep, EPOLL_CTL_ADD, p2.a, &ev) == 0);
    writer = ringlet::spawn([&] {
      ringlet::sleep(50ms);
      REQUIRE(::write(p2.b, "w", 1) == 1);
    });
    epoll_event out[4];
    CHECK(::epoll_wait(ep, out, 4, 2000) == 1);
    CHECK(out[0].data.fd == p2.a);
    writer.join();
    REQUIRE(::read(p2.a, &c, 1) == 1);
    CHECK(::epoll_wait(ep, out, 4, 50) == 0);
    ::close(ep);
    CHECK(t.ticks.load() >= 20);
  });
  CHECK(waited("poll") >= 2);
  CHECK(waited("select") >= 2);
  CHECK(waited("epoll_wait") >= 2);
}

TEST_CASE("patch: connect and accept on blocking sockets, and a TCP echo between fibers", "[patch]") {
  in_scheduler([] {
    int ls = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(ls >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(ls, 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    auto server = ringlet::spawn([&] {
      for (int i = 0; i < 10; ++i) {
        int c = ::accept(ls, nullptr, nullptr);
        REQUIRE(c >= 0);
        ringlet::spawn([c] {
          char buf[256];
          for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;) REQUIRE(::send(c, buf, static_cast<size_t>(n), 0) == n);
          ::close(c);
        });
      }
    });
    std::vector<ringlet::Greenlet<void>> clients;
    for (int i = 0; i < 10; ++i) {
      clients.push_back(ringlet::spawn([&a, i] {
        int s = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
        for (int r = 0; r < 20; ++r) {
          std::string msg = "client " + std::to_string(i) + " round " + std::to_string(r);
          REQUIRE(::send(s, msg.data(), msg.size(), 0) == static_cast<ssize_t>(msg.size()));
          char buf[256];
          std::size_t got = 0;
          while (got < msg.size()) {
            ssize_t n = ::read(s, buf + got, sizeof buf - got);
            REQUIRE(n > 0);
            got += static_cast<std::size_t>(n);
          }
          REQUIRE(std::string(buf, got) == msg);
        }
        ::close(s);
      }));
    }
    ringlet::joinall(clients);
    server.join();
    ::close(ls);
    // Refused: errno as unpatched.
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    errno = 0;
    CHECK(::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == -1);
    CHECK(errno == ECONNREFUSED);
    ::close(s);
  });
}

TEST_CASE("patch: name lookups on a fiber run on the resolver threads", "[patch]") {
  CountingScope counting;
  in_scheduler([] {
    Ticker t;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    REQUIRE(::getaddrinfo("localhost", "80", &hints, &res) == 0);
    REQUIRE(res != nullptr);
    ::freeaddrinfo(res);
    CHECK(::getaddrinfo("name.invalid", "80", &hints, &res) != 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char host[256];
    CHECK(::getnameinfo(reinterpret_cast<sockaddr*>(&a), sizeof a, host, sizeof host, nullptr, 0,
                        NI_NUMERICHOST) == 0);
    CHECK(std::string(host) == "127.0.0.1");
    hostent* he = ::gethostbyname("localhost");
    REQUIRE(he != nullptr);
    CHECK(he->h_addrtype == AF_INET);
  });
  CHECK(patch::stats("getaddrinfo").on_fiber == 2);
  CHECK(patch::stats("getnameinfo").on_fiber == 1);
  CHECK(patch::stats("gethostbyname").on_fiber == 1);
}

TEST_CASE("patch: off a fiber, or with its group off, the real blocking call", "[patch]") {
  CountingScope counting;
  Pair p;
  std::thread writer([&] {
    std::this_thread::sleep_for(30ms);
    REQUIRE(::write(p.b, "q", 1) == 1);
  });
  char c;
  CHECK(::read(p.a, &c, 1) == 1);  // a plain thread: libc's read
  writer.join();
  CHECK(patch::stats("read").passed >= 1);
  CHECK(patch::stats("read").on_fiber == 0);
  // On a fiber with "time" off, usleep blocks the whole thread: the ticker cannot tick.
  patch::disable(patch::Time);
  in_scheduler([] {
    Ticker t;
    ringlet::yield();
    const int before = t.ticks.load();
    ::usleep(100'000);
    CHECK(t.ticks.load() == before);
  });
  patch::enable(patch::Time);
  CHECK(patch::enabled() == patch::All);
}

TEST_CASE("patch: RINGLET_PATCH's syntax", "[patch]") {
  unsigned g = 0;
  std::string err;
  CHECK(patch::parse_groups("all", g, err));
  CHECK(g == patch::All);
  CHECK(patch::parse_groups("-dns,-select", g, err));
  CHECK(g == (patch::Time | patch::Socket | patch::Thread | patch::Process));
  CHECK(patch::parse_groups("all,-process", g, err));
  CHECK(g == (patch::All & ~patch::Process));
  CHECK(patch::parse_groups("-thread", g, err));
  CHECK(g == (patch::All & ~patch::Thread));
  CHECK(patch::parse_groups("time,socket", g, err));
  CHECK(g == (patch::Time | patch::Socket));
  CHECK(patch::parse_groups("none", g, err));
  CHECK(g == 0);
  CHECK_FALSE(patch::parse_groups("all,-sockets", g, err));
  CHECK(err.find("sockets") != std::string::npos);
}

TEST_CASE("patch: a forked child gets its own engine and goes on", "[patch]") {
  in_scheduler([] {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child's fiber: sleeps and socket waits through a new ring.
      int code = 0;
      Pair p;
      auto w = ringlet::spawn([&] {
        ::usleep(20'000);
        if (::write(p.b, "k", 1) != 1) code = 2;
      });
      char c;
      if (::read(p.a, &c, 1) != 1 || c != 'k') code = 3;
      w.join();
      ::_exit(code == 0 ? 7 : code);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 7);
    // The parent's engine is untouched.
    CHECK(::usleep(10'000) == 0);
  });
}

// --- libcurl's blocking easy API from 50 fibers ------------------------------------------

namespace {

std::size_t collect(char* p, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

// n fibers each fetch the URL with curl_easy_perform; returns the wall time.
double fetch_from_fibers(const std::string& url, int n) {
  return in_scheduler([&] {
    const auto t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<void>> gs;
    for (int i = 0; i < n; ++i) {
      gs.push_back(ringlet::spawn(ringlet::SpawnOptions{.stack_size = 256 * 1024}, [&url] {
        CURL* h = curl_easy_init();
        REQUIRE(h != nullptr);
        std::string body;
        curl_easy_setopt(h, CURLOPT_URL, url.c_str());
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        REQUIRE(rc == CURLE_OK);
        CHECK(status == 200);
        CHECK(body == "slow hello");
      }));
    }
    ringlet::joinall(gs);
    return seconds_since(t0);
  });
}

}  // namespace

TEST_CASE("patch: a fiber killed while system() waits reaps the child first, then ends", "[patch]") {
  CountingScope counting;
  in_scheduler([] {
    int st = -2;
    auto g = ringlet::spawn([&] {
      st = ::system("sleep 0.3; exit 5");
      ringlet::yield();  // the kill, kept pending, is raised here
      st = -3;
    });
    ringlet::sleep(50ms);  // it waits in system()
    g.kill();
    CHECK_THROWS_AS(g.get(), ringlet::GreenletExit);
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 5);
  });
  // Backed-off sleeps after the kill, not a spin on the pending kill.
  CHECK(patch::stats("waitpid").waited < 100);
  CHECK(patch::stats("system").on_fiber == 1);
}

TEST_CASE("patch: a popen stream made on a fiber is pclosed by a plain thread, and the reverse", "[patch]") {
  CountingScope counting;
  FILE* from_fiber = nullptr;
  FILE* from_plain = ::popen("exit 6", "r");  // glibc's own (no fiber here)
  REQUIRE(from_plain != nullptr);
  int st_plain = -2;
  in_scheduler([&] {
    from_fiber = ::popen("exit 5", "r");
    st_plain = ::pclose(from_plain);  // glibc's stream: glibc's pclose
  });
  REQUIRE(from_fiber != nullptr);
  const int st = ::pclose(from_fiber);  // the patch's stream, closed and waited for off a fiber
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 5);
  REQUIRE(WIFEXITED(st_plain));
  CHECK(WEXITSTATUS(st_plain) == 6);
  CHECK(patch::stats("popen").on_fiber == 1);
  CHECK(patch::stats("popen").passed == 1);
}

TEST_CASE("patch: libcurl's blocking easy API from 50 fibers finishes in about one delay", "[patch][curl]") {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ringlet::test::HttpTestServer server{"slow hello", 200ms};
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/";
  CountingScope counting;
  const double patched = fetch_from_fibers(url, 50);
  std::printf("patch: 50 curl fetches of a 0.2 s page from fibers: %.2f s patched\n", patched);
  CHECK(patched < 1.5);  // serial: 10 s
  CHECK(patch::stats("poll").waited + patch::stats("recv").waited + patch::stats("read").waited > 0);
  // The patch off: every fetch blocks the thread, so they run one after another.
  patch::disable(patch::All);
  const double unpatched = fetch_from_fibers(url, 8);
  patch::enable(patch::All);
  std::printf("patch: 8 curl fetches with the patch off: %.2f s (serial)\n", unpatched);
  CHECK(unpatched >= 8 * 0.2 * 0.95);
  curl_global_cleanup();
}
