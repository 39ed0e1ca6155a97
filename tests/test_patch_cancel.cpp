// pthread_cancel of a patched thread parked in a receive: from a plain OS thread, and after
// data already woke the receive (the data is returned, the cancel acts at the next point).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "helpers.hpp"
#include "patch_helpers.hpp"
#include "ringlet/patch.hpp"

using namespace std::chrono_literals;
using ringlet::test::in_scheduler;
using ringlet::test::kFibers;
using ringlet::test::Ticker;
namespace patch = ringlet::patch;

namespace {
std::atomic<int> g_cancel_unwound{0};
struct CountsUnwind {
  ~CountsUnwind() { g_cancel_unwound.fetch_add(1); }
};
}  // namespace

namespace {
// A UDP socket on 127.0.0.1, made by the hooked socket(); its address in sa.
int bound_udp_socket(sockaddr_in& sa) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  REQUIRE(s >= 0);
  sa = sockaddr_in{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(getsockname(s, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  return s;
}
}  // namespace

TEST_CASE("threads: pthread_cancel from a plain OS thread ends a fiber thread's recv", "[patch][thread]") {
  if (!kFibers) return;  // threads stay real in ASan builds: glibc's own cancellation
  in_scheduler([] {
    Ticker ticker;
    // A socket made by the hooked socket(): its descriptor entry is fresh (a pipe's number
    // may carry a stale entry of a file glibc closed internally: patch/README.md).
    sockaddr_in sa{};
    int s = bound_udp_socket(sa);
    g_cancel_unwound = 0;
    pthread_t t{};
    REQUIRE(pthread_create(&t, nullptr, [](void* p) -> void* {
      CountsUnwind guard;
      char c;
      (void)recv(*static_cast<int*>(p), &c, 1, 0);  // parks until the cancel
      return nullptr;
    }, &s) == 0);
    const unsigned groups = patch::enabled();
    patch::disable(patch::Thread);
    std::thread canceller([t] {
      std::this_thread::sleep_for(100ms);
      pthread_cancel(t);  // another OS thread: posted to the fiber's scheduler
    });
    patch::enable(groups);
    const int ticks_before = ticker.ticks.load();
    void* ret = nullptr;
    CHECK(pthread_join(t, &ret) == 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(g_cancel_unwound.load() == 1);
    CHECK(ticker.ticks.load() - ticks_before >= 5);
    canceller.join();
    // The socket still works.
    CHECK(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 1);
    char c = 0;
    CHECK(recv(s, &c, 1, 0) == 1);
    close(s);
  });
}

namespace {
std::atomic<int> g_received{-1};
}  // namespace

TEST_CASE("threads: a recv that data woke before the cancel came returns it; the cancel acts next", "[patch][thread]") {
  if (!kFibers) return;
  in_scheduler([] {
    sockaddr_in sa{};
    int s = bound_udp_socket(sa);
    g_received = -1;
    pthread_t t{};
    REQUIRE(pthread_create(&t, nullptr, [](void* p) -> void* {
      char buf[8] = {0};
      g_received = static_cast<int>(recv(*static_cast<int*>(p), buf, sizeof buf, 0));
      pthread_testcancel();
      g_received = -2;  // not reached
      return nullptr;
    }, &s) == 0);
    ringlet::sleep(50ms);  // it is parked in recv
    // The datagram is there before the cancel: its completion is not reaped yet (nothing
    // switched since), and pthread_cancel must not end the recv with it unread.
    REQUIRE(sendto(s, "abc", 3, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 3);
    REQUIRE(pthread_cancel(t) == 0);
    void* ret = nullptr;
    CHECK(pthread_join(t, &ret) == 0);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(g_received.load() == 3);
    close(s);
  });
}

// --- across carriers (issue 21) -------------------------------------------------------------
// One run with two schedulers (ringlet::run, threads = 2), as ringlet-run --threads 2 makes
// for a patched program. Producers and consumers on different cores pass 1, 2, 3... through
// the patch's pthread mutex + condition variable, sem_t, pthread_barrier and libstdc++'s
// std::atomic<int>::wait (syscall(SYS_futex)); the consumer checks the order and the sum. The
// slots are plain memory, guarded only by the primitive. (Not under ThreadSanitizer: a TSan
// build of this program dies before main, tests/meson.build says why; the ASan build runs
// these, with real threads for the pthreads.)
