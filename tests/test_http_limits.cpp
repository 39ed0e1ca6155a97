// The client against a server that sends without limit what comes before a body: a 128 MB
// chunk extension, 128 MB of trailers, a 1 MB header field, 100 000 fields. Each fetch fails
// with its named error at once; a child process doing the same keeps its memory flat.
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "http_helpers.hpp"
#include "process.hpp"
#include "ringlet/net/http.hpp"

using namespace std::chrono_literals;
namespace http = ringlet::net::http;

namespace {

struct HostileCase {
  const char* path;
  const char* error;  // in the error's text
};
const std::vector<HostileCase> kHostile = {
    {"/chunk-ext", "chunk line too long: over the limit of 4 KiB"},
    {"/trailers", "trailers too large: with the header, over the limit of 64 KiB"},
    {"/big-header", "response header larger than the limit of 64 KiB"},
    {"/many-headers", "response header larger than the limit of 64 KiB"},
};

// Each hostile fetch fails with its error (TooLarge) within 2 s; a normal one still works.
void fetch_hostile(http::Client& client, const std::string& base) {
  for (const auto& c : kHostile) {
    INFO(c.path);
    auto t0 = ringlet::Clock::now();
    try {
      client.get(base + c.path);
      FAIL("no error");
    } catch (const http::Error& e) {
      CHECK(e.kind() == http::ErrorKind::TooLarge);
      CHECK(std::string(e.what()).find(c.error) != std::string::npos);
      INFO(e.what());
    }
    CHECK(ringlet::Clock::now() - t0 < 2s);
  }
  CHECK(client.get(base + "/ok").body == "ok");
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace

TEST_CASE("http client: a hostile server's endless chunk line, trailers and headers fail at once, by name", "[http]") {
  ringlet::test::in_scheduler([] {
    ringlet::test::RawServer srv(ringlet::test::hostile_response);
    http::Client client;
    fetch_hostile(client, srv.url(""));  // "http://127.0.0.1:port"
    // The limits are the client's options: a smaller header limit is named in the error.
    http::ClientOptions o;
    o.max_header = 4096;
    http::Client small{o};
    try {
      small.get(srv.url("/trailers"));
      FAIL("no error");
    } catch (const http::Error& e) {
      CHECK(std::string(e.what()).find("trailers too large: with the header, over the limit of 4 KiB") !=
            std::string::npos);
    }
  });
}

// Run by the next test in a child process of this binary, against the server it names.
TEST_CASE("http client child: hostile fetches, printing resident memory", "[.][http-child]") {
  const char* base = std::getenv("RINGLET_HOSTILE_BASE");
  REQUIRE(base);
  ringlet::test::in_scheduler([&] {
    http::Client client;
    CHECK(client.get(std::string(base) + "/ok").body == "ok");  // warm: a connection, its buffers
    std::size_t baseline = ringlet::test::proc_kib("self", "VmRSS:");
    ringlet::test::reset_peak("self");
    for (int round = 0; round < 3; ++round) fetch_hostile(client, base);
    std::printf("rss-kib baseline %zu peak %zu\n", baseline, ringlet::test::proc_kib("self", "VmHWM:"));
    std::fflush(stdout);
  });
}

TEST_CASE("http client: the hostile fetches in a process of their own keep its memory within 8 MB", "[http]") {
  ringlet::test::RawServerThread srv(ringlet::test::hostile_response);
  std::string base = srv.url("");
  setenv("RINGLET_HOSTILE_BASE", base.c_str(), 1);
  ringlet::test::Process child({self_exe(), "[http-child]"});
  int status = child.wait(60000ms);
  unsetenv("RINGLET_HOSTILE_BASE");
  INFO(child.out() << child.err());
  REQUIRE(status == 0);
  std::smatch m;
  REQUIRE(std::regex_search(child.out(), m, std::regex(R"(rss-kib baseline (\d+) peak (\d+))")));
  std::size_t baseline = std::stoul(m[1]), peak = std::stoul(m[2]);
  std::printf("hostile fetches in a child: baseline %zu KiB, peak %zu KiB (+%zd KiB)\n", baseline, peak,
              static_cast<std::ptrdiff_t>(peak) - static_cast<std::ptrdiff_t>(baseline));
#ifdef RINGLET_TEST_ASAN
  RINGLET_SKIP("resident memory is not measured under AddressSanitizer (it keeps freed memory in quarantine)");
#else
  CHECK(peak < baseline + 8 * 1024);
#endif
}
