#include "ringlet/net/server.hpp"

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringlet/pool.hpp"

namespace ringlet::net {

// A running handler: linked into the server's list from its fiber's stack, so stop() can
// find and kill it; unlinked when the handler ends, however it ends.
struct StreamServer::Conn {
  BasicGreenlet fiber;
  Conn* prev = nullptr;
  Conn* next = nullptr;
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
  if (acceptor_ && !acceptor_.ready()) all.push_back(acceptor_);
  detail::kill_and_wait(all);
  listener_.close();
  all.clear();
  for (Conn* c = conns_; c; c = c->next) all.push_back(c->fiber);
  detail::kill_and_wait(all);
  stopped_ = true;
  done_.set();
}

void StreamServer::start() {
  if (started_) throw std::logic_error("ringlet::net::StreamServer::start: already started");
  started_ = true;
  acceptor_ = spawn(SpawnOptions{.name = "accept " + address_.to_string()}, [this] { accept_loop(); });
}

void StreamServer::serve_forever() {
  if (!started_) start();
  done_.wait();
}

void StreamServer::stop(Clock::duration grace) {
  if (stopped_) return;
  if (!started_) {
    listener_.close();
    started_ = stopped_ = true;
    done_.set();
    return;
  }
  if (stopping_) {  // another fiber is stopping it: wait for that
    done_.wait();
    return;
  }
  stopping_ = true;
  acceptor_.kill();  // it may be in accept or waiting for a slot: either is a switch point
  listener_.close();
  // A handler may call stop() itself; it does not wait for itself.
  const BasicGreenlet self = current();
  std::vector<BasicGreenlet> handlers;
  for (Conn* c = conns_; c; c = c->next)
    if (c->fiber.id() != self.id()) handlers.push_back(c->fiber);
  if (!joinall(handlers, Deadline::after(grace))) {
    for (auto& g : handlers) g.kill(false);
    joinall(handlers);
  }
  stopped_ = true;
  done_.set();
}

namespace {
bool resource_shortage(const std::error_code& ec) {
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}
}  // namespace

void StreamServer::accept_loop() {
  using namespace std::chrono_literals;
  const bool limited = opts_.max_connections != 0;
  Clock::duration backoff{};
  for (;;) {
    if (limited) slots_.acquire();
    Address peer;
    std::error_code ec;
    TcpStream conn = listener_.accept(Deadline::never(), ec, &peer);
    if (ec) {
      if (limited) slots_.release();
      if (stopping_ || !listener_) return;
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
    ++stats_.accepted;
    if (++stats_.active > stats_.peak_active) stats_.peak_active = stats_.active;
    try {
      spawn(SpawnOptions{.name = "conn", .stack_size = opts_.stack_size},
            [this](TcpStream c, Address p) { serve(std::move(c), std::move(p)); }, std::move(conn),
            peer);
    } catch (const std::exception& e) {  // no memory for a stack: drop this one, back off
      --stats_.active;
      if (limited) slots_.release();
      ++stats_.accept_errors;
      std::fprintf(stderr, "ringlet::net::StreamServer(%s): cannot start a handler for %s: %s\n",
                   address_.to_string().c_str(), peer.to_string().c_str(), e.what());
      sleep(10ms);
    }
  }
}

void StreamServer::serve(TcpStream conn, Address peer) {
  Conn node{current()};
  node.next = conns_;
  if (conns_) conns_->prev = &node;
  conns_ = &node;
  struct Exit {
    StreamServer* s;
    Conn* node;
    TcpStream* conn;
    ~Exit() {
      conn->close();
      if (node->prev) node->prev->next = node->next;
      else s->conns_ = node->next;
      if (node->next) node->next->prev = node->prev;
      --s->stats_.active;
      if (s->opts_.max_connections) s->slots_.release();
    }
  } exit{this, &node, &conn};
  try {
    handler_(conn, peer);
  } catch (const GreenletExit&) {
    throw;
  } catch (...) {
    ++stats_.handler_errors;
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
