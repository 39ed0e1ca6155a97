// The echo client: N connections at once (the seed's 500 threads), each a fiber sending
// M messages of B bytes and checking every reply byte for byte.
//
//   echo_client [--connect ADDR] [--conns N] [--rounds M] [--size B] [--timeout S]
//
// Prints round trips per second and the p50/p99 round-trip latency; exits 1 if any reply
// differs from what was sent or any connection fails, 2 on bad arguments.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <ringlet/net.hpp>
#include <ringlet/ringlet.hpp>

#include "fd_limit.hpp"

namespace {


// Message bytes that differ per connection and round, so a reply meant for another
// connection or an earlier round is caught.
void fill(std::string& msg, std::size_t conn, std::size_t round) {
  std::uint32_t x = static_cast<std::uint32_t>(conn * 2654435761u + round * 40503u + 1);
  for (auto& c : msg) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>('a' + (x >> 24) % 26);
  }
}

double percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringlet echo client: many connections at once, every reply verified"};
  std::string target = "127.0.0.1:8080";
  std::size_t conns = 500, rounds = 100, size = 64;
  double timeout = 10.0;
  bool upper = false;
  app.add_option("-c,--connect", target, "server address: HOST:PORT, [V6]:PORT or a Unix path")->capture_default_str();
  app.add_option("-n,--conns", conns, "connections at once, each its own fiber")->capture_default_str()->check(CLI::Range(1, 10'000'000));
  app.add_option("-r,--rounds", rounds, "messages per connection")->capture_default_str()->check(CLI::Range(1, 10'000'000));
  app.add_option("-s,--size", size, "bytes per message")->capture_default_str()->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20));
  app.add_option("-t,--timeout", timeout, "seconds a connect or a reply may take")->capture_default_str()->check(CLI::Range(0.001, 86400.0));
  app.add_flag("-u,--upper", upper, "expect replies in upper case (a server run with --upper)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; a bad argument 2, with the reason
  }
  raise_fd_limit();

  std::size_t mismatches = 0, failures = 0, done_rounds = 0;
  std::string first_error;
  std::vector<float> latencies_us;
  const std::size_t total = conns * rounds;
  const std::size_t keep_every = total > 4'000'000 ? total / 4'000'000 + 1 : 1;  // bounded memory
  latencies_us.reserve(total / keep_every + 1);
  const auto limit = std::chrono::duration_cast<ringlet::Clock::duration>(std::chrono::duration<double>(timeout));
  double elapsed = 0;

  ringlet::run([&] {
    const auto t0 = ringlet::Clock::now();
    bool finished = false;
    auto progress = ringlet::spawn(ringlet::SpawnOptions{.daemon = true}, [&] {
      if (!isatty(2)) return;
      while (!finished) {
        ringlet::sleep(std::chrono::seconds(1));
        std::fprintf(stderr, "\recho_client: %zu/%zu round trips, %zu failed connections", done_rounds, total, failures);
      }
    });
    std::vector<ringlet::Greenlet<void>> clients;
    clients.reserve(conns);
    for (std::size_t i = 0; i < conns; ++i) {
      clients.push_back(ringlet::spawn([&, i] {
        std::string out(size, '\0'), in(size, '\0');
        try {
          auto c = ringlet::net::TcpStream::connect(target, ringlet::Deadline::after(limit));
          for (std::size_t r = 0; r < rounds; ++r) {
            fill(out, i, r);
            const auto start = ringlet::Clock::now();
            std::size_t n;
            if (size <= 65536) {
              c.write_all(out, ringlet::Deadline::after(limit));
              n = c.read_exact(in, ringlet::Deadline::after(limit));
            } else {
              // A big message cannot fit in the socket buffers before the server's reply
              // fills them the other way: send from a second fiber while this one reads.
              auto writer = ringlet::spawn([&] { c.write_all(out, ringlet::Deadline::after(limit)); });
              n = c.read_exact(in, ringlet::Deadline::after(limit));
              writer.get();
            }
            const auto us = std::chrono::duration<float, std::micro>(ringlet::Clock::now() - start).count();
            if (upper) std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
            if (n != size || in != out) {
              if (first_error.empty())
                first_error = n != size ? "connection closed after " + std::to_string(n) + " of " + std::to_string(size) + " reply bytes"
                                        : "reply differs from the message";
              ++mismatches;
              return;
            }
            if (++done_rounds % keep_every == 0) latencies_us.push_back(us);
          }
        } catch (const std::exception& e) {
          if (first_error.empty()) first_error = e.what();
          ++failures;
        }
      }));
    }
    ringlet::joinall(clients);
    finished = true;
    elapsed = std::chrono::duration<double>(ringlet::Clock::now() - t0).count();
    progress.kill();
    if (isatty(2)) std::fprintf(stderr, "\r\033[K");
  });

  std::printf("echo_client: %zu connections x %zu rounds x %zu B to %s: %zu round trips in %.3f s = %.0f rt/s\n",
              conns, rounds, size, target.c_str(), done_rounds, elapsed, elapsed > 0 ? static_cast<double>(done_rounds) / elapsed : 0.0);
  std::printf("echo_client: latency p50 %.1f us, p99 %.1f us; %zu mismatched replies, %zu failed connections\n",
              percentile(latencies_us, 0.50), percentile(latencies_us, 0.99), mismatches, failures);
  std::fflush(stdout);
  if (!first_error.empty()) std::fprintf(stderr, "echo_client: first error: %s\n", first_error.c_str());
  return mismatches || failures ? 1 : 0;
}
