#include "ringlet/net/server.hpp"

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ringlet/pool.hpp"

namespace ringlet::net {

// A running handler: linked into its core's list from its fiber's stack, so stop() can
// find and kill it; unlinked when the handler ends, however it ends.
struct StreamServer::Conn {
  BasicGreenlet fiber;
  Conn* prev = nullptr;
  Conn* next = nullptr;
};

// What one core serves. Its list of handlers is only touched on that core.
struct StreamServer::Shard {
  unsigned core = 0;
  TcpListener listener;  // ReusePort: each core's; otherwise the accepting shard's only
  BasicGreenlet acceptor;
  Conn* conns = nullptr;
};

// One accepted connection's place: counted active, and holding a slot under
// max_connections, until it is destroyed, wherever that happens: at the end of its handler,
// or with a handler fiber that never started (no stack on the core it was handed to).
class StreamServer::Seat {
 public:
  explicit Seat(StreamServer* s) noexcept : s_(s) {}
  Seat(Seat&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Seat& operator=(Seat&&) = delete;
  ~Seat() {
    if (!s_) return;
    s_->stats_.active.fetch_sub(1, std::memory_order_relaxed);
    if (s_->opts_.max_connections) s_->slots_.release();
  }

 private:
  StreamServer* s_;
};

StreamServer::StreamServer(TcpListener listener, Handler handler, ServerOptions opts)
    : listener_(std::move(listener)),
      handler_(std::move(handler)),
      opts_(std::move(opts)),
      slots_(opts_.max_connections ? opts_.max_connections : 1) {
  if (!listener_) throw std::invalid_argument("ringlet::net::StreamServer: the listener is closed");
  if (!handler_) throw std::invalid_argument("ringlet::net::StreamServer: no handler");
  address_ = listener_.local_address();
}

StreamServer::~StreamServer() {
  if (!started_ || stopped_) return;
  // No grace, and no exception out of a destructor: kill everything and wait for it
  // uninterruptibly (a kill aimed at this fiber stays pending).
  stopping_ = true;
  std::vector<BasicGreenlet> all;
  for (auto& sh : shards_)
    if (sh->acceptor && !sh->acceptor.ready()) all.push_back(sh->acceptor);
  detail::kill_and_wait(all);
  for (auto& sh : shards_) sh->listener.close();
  // Each core kills its own handlers; we wait for those helpers.
  for (auto& sh : shards_) {
    try {
      Shard* p = sh.get();
      all.push_back(spawn_on(p->core, [p] {
        std::vector<BasicGreenlet> hs;
        for (Conn* c = p->conns; c; c = c->next) hs.push_back(c->fiber);
        detail::kill_and_wait(hs);
      }));
    } catch (...) {  // no memory for the helper: that core's handlers run on
    }
  }
  detail::kill_and_wait(all, /*kill=*/false);
  stopped_ = true;
  done_.set();
}

void StreamServer::start() {
  if (started_) throw std::logic_error("ringlet::net::StreamServer::start: already started");
  const unsigned here = this_core();
  const unsigned n = opts_.spread == Spread::One ? 1 : std::max(1u, ringlet::cores());
  Spread spread = n == 1 ? Spread::One : opts_.spread;
  // SO_REUSEPORT is TCP's, and a listener handed to us may not have it: then one acceptor.
  if (spread == Spread::ReusePort &&
      (address_.family() == Family::Unix || listener_.get_option(SOL_SOCKET, SO_REUSEPORT) == 0))
    spread = Spread::Handoff;
  // Every listener first, so that a port taken by someone else fails here, serving nothing.
  std::vector<std::unique_ptr<Shard>> shards;
  for (unsigned k = 0; k < n; ++k) {
    auto sh = std::make_unique<Shard>();
    sh->core = n == 1 ? here : k;
    if (sh->core == here) sh->listener = std::move(listener_);
    else if (spread == Spread::ReusePort) sh->listener = TcpListener::bind(address_, listen_options(opts_));
    shards.push_back(std::move(sh));
  }
  shards_ = std::move(shards);
  opts_.spread = spread;
  started_ = true;
  for (auto& sh : shards_) {
    if (!sh->listener) continue;
    Shard* p = sh.get();
    sh->acceptor = spawn_on(p->core, SpawnOptions{.name = "accept " + address_.to_string()},
                            [this, p] { accept_loop(*p); });
  }
}

void StreamServer::serve_forever() {
  if (!started_) start();
  done_.wait();
}

ServerStats StreamServer::stats() const noexcept {
  ServerStats s;
  s.accepted = stats_.accepted.load(std::memory_order_relaxed);
  s.active = stats_.active.load(std::memory_order_relaxed);
  s.peak_active = stats_.peak_active.load(std::memory_order_relaxed);
  s.handler_errors = stats_.handler_errors.load(std::memory_order_relaxed);
  s.accept_errors = stats_.accept_errors.load(std::memory_order_relaxed);
  return s;
}

void StreamServer::stop(Clock::duration grace) {
  if (stopped_) return;
  if (!started_) {
    listener_.close();
    started_ = true;
    stopped_ = true;
    done_.set();
    return;
  }
  if (stopping_.exchange(true)) {  // another fiber is stopping it: wait for that
    done_.wait();
    return;
  }
  // Accept loops may be in accept or waiting for a slot: either is a switch point. Each is
  // dead before its listener closes, so no fiber of another core waits on a closed fd.
  for (auto& sh : shards_)
    if (sh->acceptor) sh->acceptor.kill();
  for (auto& sh : shards_) sh->listener.close();
  // Each core gives its own handlers the grace, then kills them; a handler may call stop()
  // itself, and does not wait for itself.
  const std::uint64_t self = current().id();
  const unsigned self_core = this_core();
  std::vector<Greenlet<void>> stoppers;
  for (auto& sh : shards_) {
    Shard* p = sh.get();
    const std::uint64_t except = p->core == self_core ? self : 0;
    stoppers.push_back(spawn_on(p->core, [this, p, grace, except] { stop_handlers(*p, grace, except); }));
  }
  joinall(stoppers);
  stopped_ = true;
  done_.set();
}

void StreamServer::stop_handlers(Shard& sh, Clock::duration grace, std::uint64_t except) {
  std::vector<BasicGreenlet> handlers;
  for (Conn* c = sh.conns; c; c = c->next)
    if (c->fiber.id() != except || except == 0) handlers.push_back(c->fiber);
  if (!joinall(handlers, Deadline::after(grace))) {
    for (auto& g : handlers) g.kill(false);
    joinall(handlers);
  }
}

StreamServer::Shard& StreamServer::local_shard() noexcept {
  return shards_.size() == 1 ? *shards_[0] : *shards_[this_core()];
}

namespace {
bool resource_shortage(const std::error_code& ec) {
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}
}  // namespace

void StreamServer::accept_loop(Shard& sh) {
  using namespace std::chrono_literals;
  const bool limited = opts_.max_connections != 0;
  Clock::duration backoff{};
  for (;;) {
    if (limited) slots_.acquire();
    Address peer;
    std::error_code ec;
    TcpStream conn = sh.listener.accept(Deadline::never(), ec, &peer);
    if (ec) {
      if (limited) slots_.release();
      if (stopping_ || !sh.listener) return;
      ++stats_.accept_errors;
      // Out of descriptors or memory: accepting again at once would spin. Say so once per
      // episode and wait, longer each time, for handlers to give some back.
      if (backoff == Clock::duration::zero())
        std::fprintf(stderr, "ringlet::net::StreamServer(%s): accept: %s; backing off\n",
                     address_.to_string().c_str(), ec.message().c_str());
      backoff = backoff == Clock::duration::zero() ? Clock::duration(1ms) : std::min<Clock::duration>(backoff * 2, 100ms);
      if (!resource_shortage(ec)) backoff = std::max<Clock::duration>(backoff, 10ms);
      sleep(backoff);
      continue;
    }
    if (backoff != Clock::duration::zero()) {
      std::fprintf(stderr, "ringlet::net::StreamServer(%s): accepting again\n", address_.to_string().c_str());
      backoff = {};
    }
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
    const std::uint64_t active = stats_.active.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint64_t peak = stats_.peak_active.load(std::memory_order_relaxed);
    while (active > peak && !stats_.peak_active.compare_exchange_weak(peak, active, std::memory_order_relaxed)) {
    }
    Seat seat{this};
    try {
      // Handoff: the cores in turn; otherwise here. The seat travels with the fiber and is
      // given back however it ends, even if it never starts.
      const unsigned core = opts_.spread == Spread::Handoff
                                ? next_core_.fetch_add(1, std::memory_order_relaxed) % cores()
                                : this_core();
      spawn_on(core, SpawnOptions{.name = "conn", .stack_size = opts_.stack_size},
               [this](TcpStream c, Address p, Seat st) { serve(std::move(c), std::move(p), std::move(st)); },
               std::move(conn), peer, std::move(seat));
    } catch (const std::exception& e) {  // no memory for a stack: drop this one, back off
      ++stats_.accept_errors;
      std::fprintf(stderr, "ringlet::net::StreamServer(%s): cannot start a handler for %s: %s\n",
                   address_.to_string().c_str(), peer.to_string().c_str(), e.what());
      sleep(10ms);
    }
  }
}

// `seat` is only held: given back when serve() returns or unwinds, after `exit` closed the socket.
void StreamServer::serve(TcpStream conn, Address peer, [[maybe_unused]] Seat seat) {
  Shard& sh = local_shard();
  Conn node{current()};
  node.next = sh.conns;
  if (sh.conns) sh.conns->prev = &node;
  sh.conns = &node;
  struct Exit {
    Shard* sh;
    Conn* node;
    TcpStream* conn;
    ~Exit() {
      conn->close();
      if (node->prev) node->prev->next = node->next;
      else sh->conns = node->next;
      if (node->next) node->next->prev = node->prev;
    }
  } exit{&sh, &node, &conn};
  try {
    handler_(conn, peer);
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    stats_.handler_errors.fetch_add(1, std::memory_order_relaxed);
    report(peer, std::current_exception());
  }
}

void StreamServer::report(const Address& peer, std::exception_ptr e) {
  if (opts_.on_error) {
    try {
      opts_.on_error(peer, e);
    } catch (...) {
    }
    return;
  }
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    what = x.what();
  } catch (...) {
  }
  std::fprintf(stderr, "ringlet::net::StreamServer(%s): connection from %s failed: %s\n",
               address_.to_string().c_str(), peer.to_string().c_str(), what.c_str());
}

}  // namespace ringlet::net
