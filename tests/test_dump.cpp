// The fiber dump (ringlet/dump.hpp): every fiber with its state, its wait and its backtrace,
// from a fiber, a plain thread and another core; identical fibers grouped; and the dump on
// SIGQUIT from a running examples/echo_server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "process.hpp"
#include "ringlet/dump.hpp"
#include "ringlet/net.hpp"

using namespace std::chrono_literals;

namespace {

// The entry (a paragraph) of the dump whose frames name `fn`; empty if none.
std::string entry_with(const std::string& text, const std::string& fn) {
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find("\n\n", at);
    if (end == std::string::npos) end = text.size();
    const std::string para = text.substr(at, end - at);
    if (para.find(fn) != std::string::npos) return para;
    at = end + 2;
  }
  return {};
}

// Whether names can be read from the test executable's symbol table (libdw); without it,
// only exported names are known and the user functions here cannot be named.
bool names_readable(const std::string& text) {
  return text.find("libdw.so.1 (elfutils) cannot be loaded") == std::string::npos;
}

[[gnu::noinline]] void dump_acceptor(ringlet::net::TcpListener& l) { (void)l.accept(); }
[[gnu::noinline]] void dump_reader(ringlet::net::TcpStream& s) {
  char buf[16];
  (void)s.read_some({buf, sizeof buf});
}
// (The empty asm after a call keeps it from being a tail call, which leaves no frame.)
[[gnu::noinline]] void dump_sleeper() {
  ringlet::sleep(30s);
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void dump_locker(ringlet::Lock& l) {
  l.acquire();
  l.release();
}
[[gnu::noinline]] void dump_getter(ringlet::Queue<int>& q) {
  (void)q.get();
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void dump_joiner(ringlet::Greenlet<void> g) {
  g.join();
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void dump_busy(std::atomic<bool>& stop) {
  while (!stop.load()) ringlet::yield();
}
[[gnu::noinline]] void dump_handler(ringlet::Queue<int>& q) {
  [[maybe_unused]] static volatile int sink;
  sink = q.get().value_or(1);  // not dump_getter's code (identical functions are folded)
}
[[gnu::noinline]] void dump_on_core_one(ringlet::Event& e) {
  e.wait();
  asm volatile("" ::: "memory");
}
[[gnu::noinline]] void dump_spinner(std::atomic<bool>& started) {
  started = true;
  const auto until = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace

TEST_CASE("dump: every fiber with its state, its wait and the user function that waits", "[dump]") {
  std::string text;
  ringlet::run([&] {
    auto idle = ringlet::net::TcpListener::bind("127.0.0.1:0");
    auto listener = ringlet::net::TcpListener::bind("127.0.0.1:0");
    auto client = ringlet::net::TcpStream::connect(listener.local_address(), 5s);
    auto server_side = listener.accept(5s);
    ringlet::Lock lock;
    lock.acquire();
    ringlet::Queue<int> q;
    std::atomic<bool> stop{false};
    auto a = ringlet::spawn(ringlet::SpawnOptions{.name = "acceptor"}, [&] { dump_acceptor(idle); });
    auto r = ringlet::spawn(ringlet::SpawnOptions{.name = "reader"}, [&] { dump_reader(server_side); });
    auto s = ringlet::spawn(ringlet::SpawnOptions{.name = "sleeper"}, [] { dump_sleeper(); });
    auto l = ringlet::spawn(ringlet::SpawnOptions{.name = "locker"}, [&] { dump_locker(lock); });
    auto g = ringlet::spawn(ringlet::SpawnOptions{.name = "getter"}, [&] { dump_getter(q); });
    auto j = ringlet::spawn(ringlet::SpawnOptions{.name = "joiner"}, [s] { dump_joiner(s); });
    auto b = ringlet::spawn(ringlet::SpawnOptions{.name = "busy"}, [&] { dump_busy(stop); });
    ringlet::sleep(20ms);
    text = ringlet::dump_text();
    stop = true;
    lock.release();
    q.put(1);
    client.write_all({"x", 1});
    for (auto* h : {&a, &s, &j}) h->kill();
    for (auto* h : {&r, &l, &g, &b}) h->join();
  });
  INFO(text);
  CHECK_THAT(text, Catch::StartsWith("ringlet fiber dump: process "));
  CHECK_THAT(text, Catch::Contains("1 scheduler, 8 fibers"));
  CHECK_THAT(text, Catch::Contains("end of the fiber dump"));
  CHECK_THAT(text, Catch::Contains("fiber #1 'main' [core 0]: running (the caller)"));
  CHECK_THAT(text, Catch::Contains("'acceptor' [core 0]: parked in accept (fd "));
  CHECK_THAT(text, Catch::Contains("'reader' [core 0]: parked in recv (fd "));
  CHECK_THAT(text, Catch::Contains("'sleeper' [core 0]: parked in sleep"));
  CHECK_THAT(text, Catch::Contains("'locker' [core 0]: parked in Lock::acquire for "));
  CHECK_THAT(text, Catch::Contains("'getter' [core 0]: parked in Queue::get for "));
  CHECK_THAT(text, Catch::Contains("'joiner' [core 0]: parked in join of fiber #"));
  CHECK_THAT(text, Catch::Contains("'busy' [core 0]: runnable"));
  CHECK(std::regex_search(text, std::regex("'sleeper' \\[core 0\\]: parked in sleep for [0-9]+ ms, deadline in (29|30)\\.[0-9] s")));
  if (!names_readable(text)) {
    RINGLET_SKIP("libdw.so.1 (elfutils, scripts/setup.sh installs it) is not loadable: the test executable's "
                 "own functions cannot be named, so the frames are unchecked");
  }
  const std::pair<const char*, const char*> want[] = {
      {"dump_acceptor", "parked in accept"},   {"dump_reader", "parked in recv"},
      {"dump_sleeper", "parked in sleep"},     {"dump_locker", "parked in Lock::acquire"},
      {"dump_getter", "parked in Queue::get"}, {"dump_joiner", "parked in join"},
      {"dump_busy", "runnable"},
  };
  for (const auto& [fn, state] : want) {
    INFO(fn);
    const std::string e = entry_with(text, std::string(fn) + "(");
    CHECK_THAT(e, Catch::Contains(state));
  }
  // file:line from the debug information (of the innermost function inlined there).
  CHECK_THAT(entry_with(text, "dump_acceptor("), Catch::Contains("test_dump.cpp:"));
  CHECK_THAT(entry_with(text, "dump_reader("), Catch::Contains("test_dump.cpp:"));
  // The caller's own backtrace begins at the caller (the lambda above), not in the dump.
  const std::string mine = entry_with(text, "running (the caller)");
  CHECK_THAT(mine, Catch::Contains("#0 "));
  CHECK_THAT(mine, !Catch::Contains("build_dump"));
  CHECK_THAT(mine, Catch::Contains("test_dump.cpp:"));
}

TEST_CASE("dump: 10 000 identical handlers are one entry with the count", "[dump]") {
  std::string text;
  ringlet::run([&] {
    ringlet::Queue<int> q;
    std::vector<ringlet::Greenlet<void>> hs;
    for (int i = 0; i < 10000; ++i)
      hs.push_back(ringlet::spawn(ringlet::SpawnOptions{.name = "handler"}, [&] { dump_handler(q); }));
    ringlet::sleep(10ms);
    (void)ringlet::dump_text();  // a dump leaves every fiber's context as it was: the next sees the same
    text = ringlet::dump_text();
    q.close();
    ringlet::joinall(hs);
  });
  INFO(text.substr(0, 4000));
  CHECK_THAT(text, Catch::Contains("10001 fibers, 2 entries"));
  CHECK_THAT(text, Catch::Contains("\xC3\x97" "10000 fibers [core 0]: parked in Queue::get for "));
  CHECK_THAT(text, Catch::Contains("'handler', ... (9992 more)"));
  CHECK_THAT(text, !Catch::Contains("grab_frames"));
  if (names_readable(text)) CHECK_THAT(entry_with(text, "10000 fibers"), Catch::Contains("dump_handler("));
  CHECK(text.size() < 20000);
}

TEST_CASE("dump: from a plain thread, and with no run at all", "[dump]") {
  const std::string none = ringlet::dump_text();
  CHECK_THAT(none, Catch::Contains("0 schedulers, 0 fibers"));
  std::string text;
  ringlet::run([&] {
    auto s = ringlet::spawn(ringlet::SpawnOptions{.name = "sleeper"}, [] { dump_sleeper(); });
    ringlet::sleep(5ms);
    std::atomic<bool> done{false};
    std::thread t([&] {
      text = ringlet::dump_text();
      done = true;
    });
    while (!done) ringlet::sleep(1ms);
    t.join();
    s.kill();
  });
  INFO(text);
  CHECK_THAT(text, Catch::Contains("1 scheduler, 2 fibers"));
  CHECK_THAT(text, Catch::Contains("'sleeper' [core 0]: parked in sleep"));
  CHECK_THAT(text, Catch::Contains("fiber #1 'main' [core 0]: parked in sleep"));
  CHECK_THAT(text, !Catch::Contains("the caller"));
  if (names_readable(text)) CHECK_THAT(entry_with(text, "'sleeper'"), Catch::Contains("dump_sleeper("));
}

TEST_CASE("dump: with threads=2 both cores are read, from either; a core held by a fiber is said", "[dump][multicore]") {
  std::string from0, from1, held;
  ringlet::RunOptions opts;
  opts.threads = 2;
  ringlet::run(
      [&] {
        ringlet::Event e;
        auto w = ringlet::spawn_on(1, ringlet::SpawnOptions{.name = "on-one"}, [&] { dump_on_core_one(e); });
        ringlet::sleep(10ms);
        from0 = ringlet::dump_text();
        ringlet::spawn_on(1, [&] { from1 = ringlet::dump_text(); }).join();
        std::atomic<bool> started{false};
        auto spin = ringlet::spawn_on(1, ringlet::SpawnOptions{.name = "spinner"}, [&] { dump_spinner(started); });
        while (!started) ringlet::sleep(1ms);
        held = ringlet::dump_text();
        spin.join();
        e.set();
        w.join();
      },
      opts);
  INFO(from0);
  CHECK_THAT(from0, Catch::Contains("2 schedulers, 2 fibers"));
  CHECK_THAT(from0, Catch::Contains("core 0 (thread "));
  CHECK_THAT(from0, Catch::Contains("core 1 (thread "));
  CHECK_THAT(from0, Catch::Contains("'on-one' [core 1]: parked in Event::wait"));
  CHECK_THAT(from0, Catch::Contains("'main' [core 0]: running (the caller)"));
  INFO(from1);
  CHECK_THAT(from1, Catch::Contains("'on-one' [core 1]: parked in Event::wait"));
  CHECK_THAT(from1, Catch::Contains("'main' [core 0]: parked in join"));
  CHECK_THAT(from1, Catch::Contains("[core 1]: running (the caller)"));
  if (names_readable(from0)) CHECK_THAT(entry_with(from0, "'on-one'"), Catch::Contains("dump_on_core_one("));
  INFO(held);
  CHECK_THAT(held, Catch::Contains("did not answer within 200 ms"));
  CHECK_THAT(held, Catch::Contains("'main' [core 0]: running (the caller)"));
}

TEST_CASE("dump: ringlet_dump_fd writes it in one piece", "[dump]") {
  int p[2];
  REQUIRE(pipe(p) == 0);
  int rc = 1;
  ringlet::run([&] { rc = ringlet_dump_fd(p[1]); });
  ::close(p[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  CHECK(rc == 0);
  CHECK_THAT(got, Catch::StartsWith("ringlet fiber dump: "));
  CHECK_THAT(got, Catch::EndsWith("end of the fiber dump\n"));
  CHECK(ringlet_dump_fd(-1) == -EBADF);
}

TEST_CASE("dump on SIGQUIT: echo_server with 500 connections keeps serving and exits as before", "[dump][examples]") {
  using ringlet::test::Process;
  Process server({"echo_server", "--listen", "127.0.0.1:0"});
  const std::string first = server.line();
  INFO(first << server.err());
  const auto at = first.find("listening on 127.0.0.1:");
  REQUIRE(at != std::string::npos);
  const int port = std::stoi(first.substr(at + std::strlen("listening on 127.0.0.1:")));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string why;
  auto echo = [&why](int fd) {
    char c = 'q', back = 0;
    timeval tv{20, 0};  // generous: a connect beyond the backlog waits for a retransmission
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t s, r = -2;
    do s = ::send(fd, &c, 1, 0);
    while (s < 0 && errno == EINTR);
    // A socket with SO_RCVTIMEO answers EINTR to any handled signal, SA_RESTART or not.
    if (s == 1) do r = ::recv(fd, &back, 1, 0);
      while (r < 0 && errno == EINTR);
    why = "fd " + std::to_string(fd) + ": send " + std::to_string(s) + ", recv " + std::to_string(r) + ", errno " +
          std::strerror(errno);
    return s == 1 && r == 1 && back == c;
  };
  std::vector<int> conns;
  for (int i = 0; i < 500; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    conns.push_back(fd);
  }
  for (std::size_t i = 0; i < conns.size(); ++i) {
    const bool ok = echo(conns[i]);
    INFO("connection " << i << ": " << why << "\n" << server.err());
    REQUIRE(ok);
  }
  // Each handler is back in its read once its reply has gone; give the last ones the time.
  std::this_thread::sleep_for(300ms);
  server.signal(SIGQUIT);
  REQUIRE(server.wait_for_err("end of the fiber dump"));
  const std::string err = server.err();
  INFO(err.substr(0, 6000));
  CHECK_THAT(err, Catch::Contains("ringlet fiber dump: process echo_server"));
  CHECK_THAT(err, Catch::Contains("\xC3\x97" "500 fibers [core 0]: parked in recv (fds "));
  CHECK_THAT(err, Catch::Contains(": parked in accept"));
  // It keeps serving: every connection still echoes, and a new one too.
  for (int fd : conns) CHECK(echo(fd));
  const int extra = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(extra, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  CHECK(echo(extra));
  ::close(extra);
  for (int fd : conns) ::close(fd);
  server.signal(SIGINT);
  CHECK(server.wait(10s) == 0);
  CHECK_THAT(server.out(), Catch::Contains("stopped: 501 connections served"));
}

namespace {
volatile sig_atomic_t g_own_handler_ran = 0;
void own_handler(int) { g_own_handler_ran = 1; }

std::string read_file(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
    std::fclose(f);
  }
  return s;
}
}  // namespace

TEST_CASE("dump on RunOptions::dump_signal into RINGLET_DUMP_FILE; a program's own handler is left alone", "[dump]") {
  char path[] = "/tmp/ringlet-dump-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  ::close(fd);
  ::setenv("RINGLET_DUMP_FILE", path, 1);
  ringlet::RunOptions opts;
  opts.dump_signal = SIGUSR2;
  std::string text;
  ringlet::run(
      [&] {
        auto s = ringlet::spawn(ringlet::SpawnOptions{.name = "sleeper"}, [] { dump_sleeper(); });
        ringlet::sleep(5ms);
        ::kill(::getpid(), SIGUSR2);
        for (int i = 0; i < 500 && text.find("end of the fiber dump") == std::string::npos; ++i) {
          ringlet::sleep(10ms);
          text = read_file(path);
        }
        s.kill();
      },
      opts);
  INFO(text);
  CHECK_THAT(text, Catch::Contains("'sleeper' [core 0]: parked in sleep"));
  CHECK_THAT(text, Catch::Contains("fiber #1 'main' [core 0]: parked in sleep"));
  // After the run the disposition is SIG_DFL again.
  struct sigaction cur {};
  sigaction(SIGUSR2, nullptr, &cur);
  CHECK(cur.sa_handler == SIG_DFL);
  // A handler of the program's own is never replaced: it runs, and no dump is written.
  REQUIRE(::truncate(path, 0) == 0);
  signal(SIGUSR2, own_handler);
  ringlet::run(
      [&] {
        ::kill(::getpid(), SIGUSR2);
        ringlet::sleep(300ms);
      },
      opts);
  signal(SIGUSR2, SIG_DFL);
  ::unsetenv("RINGLET_DUMP_FILE");
  CHECK(g_own_handler_ran == 1);
  CHECK(read_file(path).empty());
  ::unlink(path);
}
