// The echo server: one fiber per connection, plain blocking code in each; one OS thread, or
// one scheduler per core with --threads.
//
//   echo_server [--listen ADDR] [--threads N] [--spread reuseport|handoff] [--upper]
//               [--max-conns N] [--grace S] [--report S] [--runtime-stats]
//
// SIGINT or SIGTERM stop it gracefully (handlers get --grace seconds to finish) and it
// prints how many connections it served, the bytes it echoed and the most connections it
// held at once (with --runtime-stats, the runtime's counters too: ringlet::stats()). A
// second signal during the grace ends it at once.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>

#include <ringlet/net.hpp>
#include <ringlet/ringlet.hpp>
#include <ringlet/stats.hpp>

#include "fd_limit.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ringlet echo server: every connection is a fiber; one OS thread, or one per core with --threads"};
  std::string listen = "127.0.0.1:8080";
  bool upper = false;
  std::size_t max_conns = 0;
  double grace = 2.0;
  double report = 0.0;
  unsigned threads = 1;
  std::string spread = "reuseport";
  bool runtime_stats = false;
  app.add_option("-l,--listen", listen, "address to listen on: HOST:PORT, [V6]:PORT or a Unix path")
      ->capture_default_str();
  app.add_option("-t,--threads", threads, "scheduler threads, one per core; 0 = one per CPU")
      ->capture_default_str();
  app.add_option("--spread", spread,
                 "with --threads: reuseport (a listener per core) or handoff (one acceptor deals connections out)")
      ->capture_default_str()
      ->check(CLI::IsMember({"reuseport", "handoff"}));
  app.add_flag("-u,--upper", upper, "answer in upper case (the seed's variant)");
  app.add_option("-m,--max-conns", max_conns, "serve at most N connections at once; 0 = no limit")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-g,--grace", grace, "seconds running connections get to finish at shutdown")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-r,--report", report, "print a stats line every S seconds; 0 = only at the end")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--runtime-stats", runtime_stats, "with each stats line, the runtime's counters (ringlet::stats())");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; a bad argument 2, with the reason
  }
  raise_fd_limit();

  // Per core, each on its own cache line: cores never write the same line per message.
  struct alignas(64) Tally {
    std::atomic<std::uint64_t> bytes{0}, resets{0};
  };
  std::unique_ptr<Tally[]> tallies;
  auto total = [&](std::atomic<std::uint64_t> Tally::*field) {
    std::uint64_t n = 0;
    for (unsigned c = 0; c < ringlet::cores(); ++c) n += (tallies[c].*field).load(std::memory_order_relaxed);
    return n;
  };
  int status = 0;
  ringlet::RunOptions run_opts;
  run_opts.threads = threads;
  ringlet::run([&] {
    tallies = std::make_unique<Tally[]>(ringlet::cores());
    // Before anything else, so that the signals are blocked in every thread started later.
    auto signals = std::make_unique<ringlet::SignalSet>(std::initializer_list<int>{SIGINT, SIGTERM});
    ringlet::net::ServerOptions opts;
    opts.max_connections = max_conns;
    opts.spread = spread == "handoff" ? ringlet::net::Spread::Handoff : ringlet::net::Spread::ReusePort;
    std::unique_ptr<ringlet::net::StreamServer> server;
    try {
      server = std::make_unique<ringlet::net::StreamServer>(
          listen,
          [&](ringlet::net::TcpStream conn) {
            // On the heap and left uninitialised: an idle connection then costs the pages it
            // touched (its stack's top and the buffer's first page), not 16 KiB. On the stack
            // the compiler's stack-clash probes would touch every page of it.
            constexpr std::size_t kBuf = 16384;
            auto buf = std::make_unique_for_overwrite<char[]>(kBuf);
            try {
              while (std::size_t n = conn.read_some({buf.get(), kBuf})) {
                if (upper)
                  std::transform(buf.get(), buf.get() + n, buf.get(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
                conn.write_all({buf.get(), n});
                tallies[ringlet::this_core()].bytes.fetch_add(n, std::memory_order_relaxed);
              }
            } catch (const std::system_error& e) {
              // A client that vanishes mid-conversation (reset, or gone while we answer)
              // ends its connection, not an error of ours; anything else is logged.
              if (e.code() != std::errc::connection_reset && e.code() != std::errc::broken_pipe) throw;
              tallies[ringlet::this_core()].resets.fetch_add(1, std::memory_order_relaxed);
            }
          },
          opts);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "echo_server: %s\n", e.what());
      status = 1;
      return;
    }
    server->start();
    const std::string cores =
        server->cores() > 1 ? ", " + std::to_string(server->cores()) + " threads, " + spread : std::string();
    std::printf("echo_server: listening on %s (engine %s%s%s%s)\n", server->address().to_string().c_str(),
                ringlet::engine(), cores.c_str(), upper ? ", upper-casing" : "",
                max_conns ? (", at most " + std::to_string(max_conns) + " connections").c_str() : "");
    std::fflush(stdout);
    auto print_stats = [&](const char* when) {
      auto s = server->stats();
      std::printf("echo_server: %s: %" PRIu64 " connections served, %" PRIu64 " bytes echoed, peak %" PRIu64
                  " concurrent, %" PRIu64 " open now, %" PRIu64 " reset by the client, %" PRIu64 " handler errors\n",
                  when, s.accepted, total(&Tally::bytes), s.peak_active, s.active, total(&Tally::resets),
                  s.handler_errors);
      if (runtime_stats) {
        std::ostringstream os;
        os << ringlet::stats();
        std::printf("%s", os.str().c_str());
      }
      std::fflush(stdout);
    };
    int sig = 0;
    if (report > 0) {
      const auto every = std::chrono::duration_cast<ringlet::Clock::duration>(std::chrono::duration<double>(report));
      while ((sig = signals->wait(ringlet::Deadline::after(every))) == 0) print_stats("so far");
    } else {
      sig = signals->wait();
    }
    signals.reset();  // a second Ctrl-C now ends the process at once
    std::printf("echo_server: %s: stopping, %.1f s for open connections to finish\n", strsignal(sig), grace);
    std::fflush(stdout);
    server->stop(std::chrono::duration_cast<ringlet::Clock::duration>(std::chrono::duration<double>(grace)));
    print_stats("stopped");
  }, run_opts);
  return status;
}
