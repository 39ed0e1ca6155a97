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
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string_view>
#include <utility>

#include "ringlet/fiber.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/socket.hpp"
#include "ringlet/sync.hpp"
#include "ringlet/time.hpp"

namespace ringlet::net {

struct ServerOptions {
  std::size_t max_connections = 0;  // handlers running at once; 0 = no limit
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
      : StreamServer(TcpListener::bind(address, opts.listen), adapt(std::forward<Fn>(handler)),
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

  // Start accepting in a fiber of the calling scheduler and return.
  void start();
  // start() if needed, then wait until stop() is called (from another fiber).
  void serve_forever();
  // Stop accepting, wait up to `grace` for running handlers, kill the rest, close the
  // listener. Returns when every handler has ended. Idempotent.
  void stop(Clock::duration grace = std::chrono::seconds(1));

  bool serving() const noexcept { return started_ && !stopped_; }
  const Address& address() const noexcept { return address_; }  // the bound address
  ServerStats stats() const noexcept { return stats_; }

 private:
  struct Conn;  // a running handler, linked on its fiber's stack

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

  void accept_loop();
  void serve(TcpStream conn, Address peer);
  void report(const Address& peer, std::exception_ptr e);

  TcpListener listener_;
  Handler handler_;
  ServerOptions opts_;
  Address address_;
  ServerStats stats_{};
  Semaphore slots_;
  Event done_;  // set when stopped
  BasicGreenlet acceptor_;
  Conn* conns_ = nullptr;
  bool started_ = false;
  bool stopped_ = false;
  bool stopping_ = false;
};

}  // namespace ringlet::net
