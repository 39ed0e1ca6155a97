// http::Client: connections (plain or TLS) kept per origin, one exchange at a time each,
// responses read through detail::ResponseParser.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cctype>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "parse.hpp"
#include "ringlet/net/dns.hpp"
#include "ringlet/net/http.hpp"
#include "ringlet/net/socket.hpp"
#include "ringlet/net/tls.hpp"

namespace ringlet::net::http {

namespace {
std::string ms_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}
bool idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" || m == "TRACE";
}
bool is_timeout(const std::system_error& e) { return e.code() == std::errc::timed_out; }

// A kept connection the server had closed: the exchange may be sent again on a new one.
struct Stale {};
}  // namespace

// One connection: plain, or TLS over the TCP stream.
struct Conn {
  static constexpr std::size_t kBuf = 16384;
  std::optional<TcpStream> plain;
  std::optional<TlsStream> tls;
  Clock::time_point idle_since{};
  // Responses are read into this, allocated once per connection: on the fiber's stack it
  // would be a quarter of a default 64 KiB stack (half, with TLS's own buffer below it).
  std::unique_ptr<char[]> buf = std::make_unique_for_overwrite<char[]>(kBuf);

  int fd() const noexcept { return tls ? const_cast<TlsStream&>(*tls).tcp().fd() : plain->fd(); }
  std::size_t read_some(MutableBuffer b, Deadline d) { return tls ? tls->read_some(b, d) : plain->read_some(b, d); }
  void write_all(ConstBuffer b, Deadline d) {
    if (tls)
      tls->write_all(b, d);
    else
      plain->write_all(b, d);
  }
  // Still usable after sitting idle: nothing to read (no EOF, no stray bytes, no alert).
  bool fresh() const noexcept {
    char c;
    ssize_t n = ::recv(fd(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
};

struct Client::Impl {
  explicit Impl(const ClientOptions& o) : opts(o) {}
  const ClientOptions& opts;

  std::mutex mu;  // guards idle, dns, tls_ctx (held for map operations only, never across I/O)
  std::unordered_map<std::string, std::vector<std::unique_ptr<Conn>>> idle;
  struct DnsEntry {
    std::vector<Address> addrs;
    Clock::time_point expires;
  };
  std::unordered_map<std::string, DnsEntry> dns;
  std::optional<TlsContext> tls_ctx;

  std::atomic<std::uint64_t> requests{0}, connections{0}, reused{0}, retried{0};

  std::unique_ptr<Conn> take_idle(const std::string& origin) {
    auto now = Clock::now();
    std::lock_guard lk(mu);
    auto it = idle.find(origin);
    if (it == idle.end()) return nullptr;
    auto& v = it->second;
    while (!v.empty()) {
      auto c = std::move(v.back());
      v.pop_back();
      if (now - c->idle_since < opts.idle_timeout && c->fresh()) return c;
    }
    return nullptr;
  }

  void put_idle(const std::string& origin, std::unique_ptr<Conn> c) {
    c->idle_since = Clock::now();
    std::lock_guard lk(mu);
    auto& v = idle[origin];
    if (v.size() < opts.max_idle_per_host) v.push_back(std::move(c));
  }

  TlsContext tls_context() {
    std::lock_guard lk(mu);
    if (!tls_ctx) tls_ctx = TlsContext::client({.verify = opts.verify, .ca_file = opts.ca_file});
    return *tls_ctx;
  }

  std::vector<Address> addresses(const Url& url, Deadline d) {
    std::string key = url.host() + ":" + std::to_string(url.port());
    auto now = Clock::now();
    {
      std::lock_guard lk(mu);
      auto it = dns.find(key);
      if (it != dns.end() && it->second.expires > now) return it->second.addrs;
    }
    std::error_code ec;
    auto addrs = resolve(url.host(), url.port(), d, AF_UNSPEC, ec);
    if (ec == std::errc::timed_out) throw Error(ErrorKind::Timeout, "timed out: looking up " + url.host());
    if (ec || addrs.empty())
      throw Error(ErrorKind::Dns, "cannot resolve " + url.host() + ": " + (ec ? ec.message() : "no addresses"));
    std::lock_guard lk(mu);
    if (dns.size() > 4096) dns.clear();
    dns[key] = {addrs, now + std::chrono::seconds(60)};
    return addrs;
  }

  std::unique_ptr<Conn> open(const Url& url, Deadline total) {
    auto addrs = addresses(url, total);
    Deadline cd = earliest(total, Deadline::after(opts.connect_timeout));
    std::error_code ec;
    TcpStream s = TcpStream::connect(std::span<const Address>(addrs), cd, ec);
    if (ec) {
      if (ec == std::errc::timed_out)
        throw Error(ErrorKind::Timeout, total.passed() ? "timed out: the deadline passed connecting to " + url.authority()
                                                       : "timed out: connecting to " + url.authority() + " took over " +
                                                             ms_text(opts.connect_timeout));
      throw Error(ErrorKind::Connect, "cannot connect to " + url.authority() + ": " + ec.message());
    }
    ++connections;
    s.set_nodelay(true);
    auto c = std::make_unique<Conn>();
    if (!url.https()) {
      c->plain.emplace(std::move(s));
      return c;
    }
    TlsContext ctx = tls_context();
    try {
      c->tls.emplace(std::move(s), ctx, url.host());
      c->tls->handshake(cd);
    } catch (const TlsError& e) {
      throw Error(ErrorKind::Tls, e.what());
    } catch (const std::system_error& e) {
      if (is_timeout(e)) throw Error(ErrorKind::Timeout, "timed out: TLS handshake with " + url.authority());
      throw Error(ErrorKind::Tls, "TLS handshake with " + url.authority() + " failed: " + e.code().message());
    }
    return c;
  }

  std::string request_text(const Request& req, const Url& url) const {
    std::string out;
    out.reserve(256 + req.body.size());
    out += req.method;
    out += ' ';
    out += url.target();
    out += " HTTP/1.1\r\n";
    auto header = [&](std::string_view name, std::string_view value) {
      if (req.headers.has(name)) return;
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    };
    header("Host", url.authority());
    header("User-Agent", opts.user_agent);
    header("Accept", "*/*");
    if (opts.decompress) header("Accept-Encoding", "gzip, deflate");
    header("Connection", "keep-alive");
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT")
      header("Content-Length", std::to_string(req.body.size()));
    for (const auto& [n, v] : req.headers) {
      out += n;
      out += ": ";
      out += v;
      out += "\r\n";
    }
    out += "\r\n";
    out += req.body;
    return out;
  }

  // One exchange on one connection. Throws Stale if a kept connection was found closed
  // before any of the response arrived.
  Response exchange(Conn& c, bool reused, const Request& req, const Url& url, Deadline total, bool& keep) {
    std::string text = request_text(req, url);
    Deadline wd = earliest(total, Deadline::after(opts.read_timeout));
    try {
      c.write_all(text, wd);
    } catch (const std::system_error& e) {
      if (reused && !is_timeout(e)) throw Stale{};
      throw;
    } catch (const TlsError&) {
      if (reused) throw Stale{};
      throw;
    }
    Response resp;
    resp.reused_connection = reused;
    detail::ResponseParser parser(resp, {opts.max_header, opts.max_body, opts.decompress}, req.method == "HEAD");
    std::string pending;
    char* buf = c.buf.get();
    bool any = false;
    while (!parser.done()) {
      std::size_t n;
      try {
        n = c.read_some({buf, Conn::kBuf}, earliest(total, Deadline::after(opts.read_timeout)));
      } catch (const std::system_error& e) {
        if (reused && !any && !is_timeout(e)) throw Stale{};
        throw;
      } catch (const TlsError&) {
        if (reused && !any) throw Stale{};
        throw;
      }
      if (n == 0) {
        if (reused && !any) throw Stale{};
        parser.feed_eof();
        break;
      }
      any = true;
      std::string_view in(buf, n);
      if (pending.empty()) {
        std::size_t used = parser.feed(in);
        if (used < n) pending.assign(buf + used, n - used);
      } else {
        pending.append(buf, n);
        pending.erase(0, parser.feed(pending));
      }
    }
    keep = parser.keep_alive() && pending.empty();
    return resp;
  }

  Response send_once(const Request& req, const Url& url, Deadline total) {
    std::string origin = url.origin();
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Conn> c = attempt == 0 ? take_idle(origin) : nullptr;
      bool reused = c != nullptr;
      if (!c) c = open(url, total);
      ++requests;
      if (reused) ++this->reused;
      bool keep = false;
      try {
        Response r = exchange(*c, reused, req, url, total, keep);
        if (keep) put_idle(origin, std::move(c));
        return r;
      } catch (const Stale&) {
        if (!idempotent(req.method))
          throw Error(ErrorKind::Io, "kept-alive connection to " + url.authority() + " was closed by the server");
        ++retried;
        continue;  // once: the next attempt opens a new connection, which cannot be stale
      } catch (const TlsError& e) {
        throw Error(ErrorKind::Tls, e.what());
      } catch (const std::system_error& e) {
        if (is_timeout(e))
          throw Error(ErrorKind::Timeout, total.passed() ? "timed out: the deadline passed waiting for " + url.authority()
                                                         : "timed out: no data from " + url.authority() + " for " +
                                                               ms_text(opts.read_timeout));
        throw Error(ErrorKind::Io, "connection to " + url.authority() + " failed: " + e.code().message());
      }
    }
  }
};

Client::Client(ClientOptions o) : opts_(std::move(o)), impl_(std::make_unique<Impl>(opts_)) {}
Client::~Client() = default;

Response Client::get(std::string_view url, Deadline d) {
  Request r;
  r.url = url;
  r.deadline = d;
  return send(std::move(r));
}

Response Client::head(std::string_view url, Deadline d) {
  Request r;
  r.method = "HEAD";
  r.url = url;
  r.deadline = d;
  return send(std::move(r));
}

Response Client::post(std::string_view url, std::string body, std::string_view content_type, Deadline d) {
  Request r;
  r.method = "POST";
  r.url = url;
  r.body = std::move(body);
  r.headers.add("Content-Type", std::string(content_type));
  r.deadline = d;
  return send(std::move(r));
}

Response Client::send(Request req) {
  Url url = Url::parse(req.url);
  Deadline total = req.deadline;
  if (opts_.total_timeout.count() > 0) total = earliest(total, Deadline::after(opts_.total_timeout));
  std::vector<std::string> history;
  std::unordered_set<std::string> seen{url.str()};
  for (;;) {
    Response r;
    try {
      r = impl_->send_once(req, url, total);
    } catch (const Error& e) {
      throw Error(e.kind(), req.method + " " + url.str() + ": " + e.what());
    }
    bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
    auto location = r.headers.get("Location");
    if (!opts_.follow_redirects || !redirect || !location) {
      r.url = url.str();
      r.redirects = std::move(history);
      return r;
    }
    std::string why;
    auto next = url.resolve(*location, &why);
    if (!next)
      throw Error(ErrorKind::InvalidUrl, req.method + " " + url.str() + ": redirect to an invalid URL '" +
                                             std::string(location->substr(0, 200)) + "': " + why);
    history.push_back(url.str());
    if (!seen.insert(next->str()).second) {
      std::string chain;
      for (const auto& h : history) chain += h + " -> ";
      throw Error(ErrorKind::RedirectLoop, "redirect loop: " + chain + next->str());
    }
    if (static_cast<int>(history.size()) > opts_.max_redirects)
      throw Error(ErrorKind::TooManyRedirects, req.method + " " + history.front() + ": more than " +
                                                   std::to_string(opts_.max_redirects) + " redirects");
    if (r.status == 303 || ((r.status == 301 || r.status == 302) && req.method == "POST")) {
      if (req.method != "HEAD") req.method = "GET";
      req.body.clear();
      req.headers.remove("Content-Type");
      req.headers.remove("Content-Length");
    }
    url = std::move(*next);
  }
}

void Client::close_idle() noexcept {
  std::lock_guard lk(impl_->mu);
  impl_->idle.clear();
}

ClientStats Client::stats() const noexcept {
  return {impl_->requests.load(), impl_->connections.load(), impl_->reused.load(), impl_->retried.load()};
}

}  // namespace ringlet::net::http
