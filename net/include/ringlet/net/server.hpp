// StreamServer: accept connections and serve each in its own fiber, as gevent's
// StreamServer does.
//
//   ringlet::net::StreamServer server{"127.0.0.1:8080", [](ringlet::net::TcpStream conn) {
//     char buf[4096];
//     while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
//   }};
//   server.serve_forever();          // or start(), and later stop(grace)
//
// - The handler gets the connection (by value, or as TcpStream& with the peer's Address as
//   a second argument); the connection is closed when the handler returns.
// - An exception escaping a handler is logged on stderr with the peer's address and ends
//   that connection only (ServerOptions::on_error replaces the log line).
// - With max_connections set, accepting pauses while that many handlers run; waiting
//   clients stay in the listen backlog, nothing is refused or dropped.
// - Out of descriptors (EMFILE/ENFILE) or kernel memory on accept, the server says so once
//   and backs off (1 ms, doubling to 100 ms) instead of spinning.
// - stop(grace) stops accepting at once, gives running handlers up to `grace` to finish,
//   then kills the rest (GreenletExit at their next blocking call) and waits for them.
// - In a multi-core run (RunOptions::threads), ServerOptions::spread serves on every core:
//   ReusePort gives each core its own SO_REUSEPORT listener and accept loop (the kernel
//   spreads connections); Handoff accepts on one core and hands connections to the cores
//   in turn. A connection stays on the core that serves it; max_connections, stats() and
//   stop() cover every core.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "ringlet/fiber.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/socket.hpp"
#include "ringlet/sync.hpp"
#include "ringlet/time.hpp"

namespace ringlet::net {

// Where a StreamServer serves (see above).
enum class Spread {
  One,        // the core that calls start(), only
  ReusePort,  // every core: one SO_REUSEPORT listener and accept loop each (TCP only)
  Handoff,    // every core: one accept loop hands connections out round-robin
};

struct ServerOptions {
  std::size_t max_connections = 0;  // handlers running at once, on all cores; 0 = no limit
  // Serve on every core of the run. ReusePort on a Unix socket is Handoff.
  Spread spread = Spread::One;
  ListenOptions listen{};           // when the server binds the address itself
  std::size_t stack_size = 0;       // handler fibers' stacks; 0 = the runtime's default
  // Called (in the handler's fiber) with the peer and the exception that ended a handler;
  // by default a line on stderr.
  std::function<void(const Address& peer, std::exception_ptr)> on_error{};
};

struct ServerStats {
  std::uint64_t accepted = 0;        // connections taken
  std::uint64_t active = 0;          // handlers running now
  std::uint64_t peak_active = 0;     // most handlers running at once
  std::uint64_t handler_errors = 0;  // handlers ended by an exception (not by stop's kill)
  std::uint64_t accept_errors = 0;   // failed accepts (EMFILE, ...), each backed off
};

class StreamServer {
 public:
  using Handler = std::function<void(TcpStream&, const Address&)>;

  // Binds at once (so a taken port fails here, and address() is known), serves after
  // start() or serve_forever().
  template <class Fn>
  StreamServer(std::string_view address, Fn&& handler, ServerOptions opts = {})
      : StreamServer(TcpListener::bind(address, listen_options(opts)), adapt(std::forward<Fn>(handler)),
                     std::move(opts)) {}
  template <class Fn>
    requires(!std::same_as<std::remove_cvref_t<Fn>, Handler>)
  StreamServer(TcpListener listener, Fn&& handler, ServerOptions opts = {})
      : StreamServer(std::move(listener), adapt(std::forward<Fn>(handler)), std::move(opts)) {}
  StreamServer(TcpListener listener, Handler handler, ServerOptions opts = {});

  // Stops (no grace) if still serving.
  ~StreamServer();
  StreamServer(const StreamServer&) = delete;
  StreamServer& operator=(const StreamServer&) = delete;

  // Start accepting (in a fiber of the calling core, or of every core: spread) and return.
  void start();
  // start() if needed, then wait until stop() is called (from another fiber).
  void serve_forever();
  // Stop accepting, wait up to `grace` for running handlers, kill the rest, close the
  // listener. Returns when every handler has ended. Idempotent.
  void stop(Clock::duration grace = std::chrono::seconds(1));

  bool serving() const noexcept { return started_ && !stopped_.load(std::memory_order_acquire); }
  const Address& address() const noexcept { return address_; }  // the bound address
  ServerStats stats() const noexcept;
  // The cores it serves on (1 unless spread, once started).
  unsigned cores() const noexcept { return static_cast<unsigned>(shards_.size()); }

 private:
  struct Conn;   // a running handler, linked on its fiber's stack
  struct Shard;  // what one core serves: its listener (if any), accept loop and handlers
  class Seat;    // an accepted connection's place in the counts and the connection limit
  static ListenOptions listen_options(const ServerOptions& o) {
    ListenOptions l = o.listen;
    if (o.spread == Spread::ReusePort) l.reuse_port = true;
    return l;
  }

  template <class Fn>
  static Handler adapt(Fn&& fn) {
    if constexpr (std::is_invocable_v<Fn&, TcpStream&, const Address&>) {
      return Handler(std::forward<Fn>(fn));
    } else if constexpr (std::is_invocable_v<Fn&, TcpStream&>) {
      return [fn = std::forward<Fn>(fn)](TcpStream& s, const Address&) mutable { fn(s); };
    } else {
      static_assert(std::is_invocable_v<Fn&, TcpStream&&>,
                    "a StreamServer handler takes (TcpStream), (TcpStream&) or (TcpStream&, const Address&)");
      return [fn = std::forward<Fn>(fn)](TcpStream& s, const Address&) mutable { fn(std::move(s)); };
    }
  }

  void accept_loop(Shard& sh);
  void serve(TcpStream conn, Address peer, Seat seat);
  void report(const Address& peer, std::exception_ptr e);
  Shard& local_shard() noexcept;
  void stop_handlers(Shard& sh, Clock::duration grace, std::uint64_t except);

  TcpListener listener_;  // until start() gives it to a shard
  Handler handler_;
  ServerOptions opts_;
  Address address_;
  Semaphore slots_;
  Event done_;  // set when stopped
  std::vector<std::unique_ptr<Shard>> shards_;  // by core when spread, else one
  std::atomic<unsigned> next_core_{0};           // Handoff: where the next connection goes
  struct Counters {
    std::atomic<std::uint64_t> accepted{0}, active{0}, peak_active{0}, handler_errors{0},
        accept_errors{0};
  };
  Counters stats_;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace ringlet::net
