// A small static file server on StreamServer: the crawler's test and benchmark server.
//
//   http_server DIR [--listen ADDR] [--delay MS] [--threads N] [--gzip]
//               [--tls-cert FILE --tls-key FILE] [--log]
//               [--max-header BYTES] [--max-body BYTES] [--max-connections N]
//               [--header-timeout S] [--body-timeout S] [--idle-timeout S] [--tls-timeout S]
//
// GET and HEAD of files under DIR, HTTP/1.1 keep-alive, a directory's index.html or a
// generated listing, 404/403/405/400 for the rest. --delay sleeps before every response (the
// seed's slow server: many requests wait at once, each in its own fiber). --gzip compresses
// text responses for clients that accept it. SIGINT/SIGTERM stop it and print the requests
// served and the most handled at once.
//
// It faces hostile clients with bounded memory and time: a request's head (with the
// trailers of a chunked body) over --max-header is answered 431, a chunk line over 4 KiB
// 400, a body over --max-body 413, a head not complete within --header-timeout or a body
// within --body-timeout 408, and the connection is closed; a kept-alive connection waits
// --idle-timeout for its next request, a TLS handshake --tls-timeout. At most
// --max-connections are served at once; the next ones wait in the listen backlog.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <ringlet/net.hpp>
#include <ringlet/net/tls.hpp>
#include <ringlet/ringlet.hpp>

#include "fd_limit.hpp"
#include "parse.hpp"

namespace http = ringlet::net::http;

namespace {

struct Stats {
  std::atomic<std::uint64_t> requests{0}, now{0}, peak{0}, errors{0}, refused{0};
};

std::string_view mime_type(std::string_view path) {
  auto dot = path.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "css") return "text/css";
  if (ext == "js") return "text/javascript";
  if (ext == "json") return "application/json";
  if (ext == "xml") return "application/xml";
  if (ext == "png") return "image/png";
  if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
  if (ext == "gif") return "image/gif";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "pdf") return "application/pdf";
  return "application/octet-stream";
}

bool compressible(std::string_view type) {
  return type.starts_with("text/") || type.starts_with("application/json") || type.starts_with("application/xml") ||
         type.starts_with("image/svg");
}

// "%41b" -> "Ab"; nullopt on a malformed escape or a NUL.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  if (out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

bool read_file(const std::string& path, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  ::close(fd);
  return true;
}

struct Reply {
  int status = 200;
  std::string reason = "OK";
  std::string type = "text/html; charset=utf-8";
  std::string body;
  std::string extra;  // further header lines, each ending in \r\n
};

Reply error_page(int status, const char* reason) {
  Reply r;
  r.status = status;
  r.reason = reason;
  r.body = "<!doctype html><title>" + std::to_string(status) + " " + reason + "</title><h1>" + std::to_string(status) +
           " " + reason + "</h1>\n";
  return r;
}

// What a connection is held to (all in --help).
struct ConnLimits {
  std::size_t max_header = 64u << 10;  // a request's head, and the trailers of a chunked body
  std::size_t max_body = 1u << 20;
  double header_timeout = 10;  // seconds for a whole head: from the accept (or the handshake),
                               // or on a kept-alive connection, from the head's first byte
  double body_timeout = 60;    // seconds for a whole body, from the end of its head
  double idle_timeout = 30;    // seconds a kept-alive connection may wait for its next request
  double tls_timeout = 10;     // seconds for the TLS handshake
  std::size_t max_connections = 1024;  // served at once; 0 = no limit
};

ringlet::Deadline in_seconds(double s) { return ringlet::Deadline(std::chrono::duration<double>(s)); }

constexpr auto kWriteTimeout = std::chrono::seconds(30);

// How reading a request ended.
enum class Read { Request, Closed, TimedOut, Bad };

// Reads the next request into p; bytes after it stay in pending for the next one. The head
// must be in by head_by (never: header_timeout from its first byte, which may take
// idle_timeout to come), the body within body_timeout after it. Closed: the client closed, or
// went quiet without starting a request. Bad: `status` says why (400, 413, 431).
template <class Stream>
Read read_request(Stream& s, http::detail::RequestParser& p, std::string& pending, char* buf, std::size_t size,
                  const ConnLimits& lim, ringlet::Deadline head_by, int& status) {
  bool started = !pending.empty();
  if (started && head_by.is_never()) head_by = in_seconds(lim.header_timeout);
  ringlet::Deadline body_by = ringlet::Deadline::never();
  try {
    for (;;) {
      if (!pending.empty()) {
        pending.erase(0, p.feed(pending));
        if (p.done()) return Read::Request;
      }
      if (p.header_done() && body_by.is_never()) body_by = in_seconds(lim.body_timeout);
      ringlet::Deadline d = p.header_done() ? body_by : head_by.is_never() ? in_seconds(lim.idle_timeout) : head_by;
      std::size_t n = s.read_some({buf, size}, d);
      if (n == 0) return Read::Closed;
      if (!started && head_by.is_never()) head_by = in_seconds(lim.header_timeout);
      started = true;
      pending.append(buf, n);
    }
  } catch (const http::detail::BadRequest& e) {
    status = e.status();
    return Read::Bad;
  } catch (const std::system_error& e) {
    if (e.code() != std::errc::timed_out) throw;
    return started ? Read::TimedOut : Read::Closed;
  }
}

// After a refusal: end our side, then read and drop what the client still sends (for at
// most half a second and 1 MiB), so that closing with its bytes unread does not reset the
// connection before our answer is read.
void half_close_and_drain(ringlet::net::TcpStream& tcp, char* buf, std::size_t size) {
  std::error_code ec;
  try {
    tcp.shutdown(ringlet::net::Shutdown::Write);
  } catch (const std::system_error&) {
    return;
  }
  auto until = ringlet::Deadline::after(std::chrono::milliseconds(500));
  for (std::size_t total = 0; total < (1u << 20);) {
    std::size_t n = tcp.read_some({buf, size}, until, ec);
    if (ec || n == 0) return;
    total += n;
  }
}

class FileServer {
 public:
  FileServer(std::string root) : root_(std::move(root)) {}

  Reply serve(const http::detail::RequestHead& req) const {
    if (req.method != "GET" && req.method != "HEAD") {
      Reply r = error_page(405, "Method Not Allowed");
      r.extra = "Allow: GET, HEAD\r\n";
      return r;
    }
    std::string_view target = req.target;
    target = target.substr(0, target.find_first_of("?#"));
    if (target.empty() || target[0] != '/') return error_page(400, "Bad Request");
    auto path = percent_decode(target);
    if (!path) return error_page(400, "Bad Request");
    // No segment may climb out of the root.
    for (std::size_t at = 0; at != std::string::npos;) {
      std::size_t next = path->find('/', at + 1);
      std::string_view seg = std::string_view(*path).substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
      if (seg == "..") return error_page(403, "Forbidden");
      at = next;
    }
    std::string full = root_ + *path;
    struct stat st {};
    if (::stat(full.c_str(), &st) != 0) return error_page(404, "Not Found");
    if (S_ISDIR(st.st_mode)) {
      if (path->back() != '/') {
        Reply r = error_page(301, "Moved Permanently");
        r.extra = "Location: " + std::string(target) + "/\r\n";
        return r;
      }
      Reply r;
      if (read_file(full + "index.html", r.body)) return r;
      return listing(full, *path);
    }
    if (!S_ISREG(st.st_mode)) return error_page(403, "Forbidden");
    Reply r;
    if (!read_file(full, r.body)) return error_page(403, "Forbidden");
    r.type = mime_type(full);
    return r;
  }

 private:
  Reply listing(const std::string& dir, const std::string& path) const {
    Reply r;
    r.body = "<!doctype html><title>Index of " + html_escape(path) + "</title><h1>Index of " + html_escape(path) +
             "</h1><ul>\n";
    std::unique_ptr<DIR, int (*)(DIR*)> d(opendir(dir.c_str()), closedir);
    std::vector<std::string> names;
    if (d)
      while (dirent* e = readdir(d.get()))
        if (e->d_name[0] != '.') names.emplace_back(std::string(e->d_name) + (e->d_type == DT_DIR ? "/" : ""));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) r.body += "<li><a href=\"" + html_escape(n) + "\">" + html_escape(n) + "</a></li>\n";
    r.body += "</ul>\n";
    return r;
  }
  std::string root_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringlet static file server: every connection is a fiber (the crawler's test server)"};
  std::string dir;
  std::string listen = "127.0.0.1:8000";
  unsigned delay_ms = 0;
  unsigned threads = 1;
  bool use_gzip = false;
  bool log = false;
  std::string cert, key;
  app.add_option("DIR", dir, "directory to serve")->required()->check(CLI::ExistingDirectory);
  app.add_option("-l,--listen", listen, "address to listen on: HOST:PORT or [V6]:PORT")->capture_default_str();
  app.add_option("-d,--delay", delay_ms, "milliseconds to wait before every response")->capture_default_str();
  app.add_option("-t,--threads", threads, "scheduler threads (one listener per core); 0 = one per CPU")
      ->capture_default_str();
  app.add_flag("--gzip", use_gzip, "gzip text responses for clients that accept it");
  app.add_option("--tls-cert", cert, "serve HTTPS with this PEM certificate (chain)")->check(CLI::ExistingFile);
  app.add_option("--tls-key", key, "the certificate's PEM private key")->check(CLI::ExistingFile);
  app.add_flag("--log", log, "print a line per request on stderr");
  ConnLimits lim;
  app.add_option("--max-header", lim.max_header,
                 "bytes of a request's head, and of a chunked body's trailers: more is answered 431")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-body", lim.max_body, "bytes of a request's body: more is answered 413")->capture_default_str();
  app.add_option("--max-connections", lim.max_connections,
                 "connections served at once; more wait in the listen backlog (0 = no limit)")
      ->capture_default_str();
  app.add_option("--header-timeout", lim.header_timeout,
                 "seconds for a whole request head (from the connection, or from its first byte when kept "
                 "alive); then 408 and close")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--body-timeout", lim.body_timeout, "seconds for a whole request body after its head; then 408 and close")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--idle-timeout", lim.idle_timeout, "seconds a kept-alive connection may wait for its next request")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--tls-timeout", lim.tls_timeout, "seconds for the TLS handshake")
      ->capture_default_str()->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
    if (cert.empty() != key.empty()) throw CLI::ValidationError("--tls-cert and --tls-key go together");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  raise_fd_limit();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  char real[PATH_MAX];
  if (!realpath(dir.c_str(), real)) {
    std::fprintf(stderr, "http_server: %s: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  FileServer files{real};
  std::optional<ringlet::net::TlsContext> tls;
  try {
    if (!cert.empty()) tls = ringlet::net::TlsContext::server(cert, key);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_server: %s\n", e.what());
    return 1;
  }
  Stats stats;
  const auto delay = std::chrono::milliseconds(delay_ms);
  int status = 0;
  ringlet::RunOptions run_opts;
  run_opts.threads = threads;
  ringlet::run([&] {
    auto signals = std::make_unique<ringlet::SignalSet>(std::initializer_list<int>{SIGINT, SIGTERM});
    ringlet::net::ServerOptions opts;
    opts.spread = ringlet::net::Spread::ReusePort;
    opts.max_connections = lim.max_connections;  // the rest wait in the backlog, not here
    // One connection: requests in turn until the client closes or goes idle, a deadline
    // passes, or a request is refused. head_by: the first head's deadline.
    auto handle = [&](auto& stream, ringlet::net::TcpStream& tcp, ringlet::Deadline head_by) {
      // On the heap: 16 KiB on the handler's stack would be a quarter of it, and touched.
      constexpr std::size_t kBuf = 16384;
      auto buf = std::make_unique_for_overwrite<char[]>(kBuf);
      std::string pending;
      for (;; head_by = ringlet::Deadline::never()) {
        http::detail::RequestParser parser(lim.max_header, lim.max_body);
        int bad = 0;
        Read got = read_request(stream, parser, pending, buf.get(), kBuf, lim, head_by, bad);
        if (got == Read::Closed) return;
        if (got != Read::Request) {
          int code = got == Read::TimedOut ? 408 : bad;
          const char* reason = code == 408   ? "Request Timeout"
                               : code == 413 ? "Content Too Large"
                               : code == 431 ? "Request Header Fields Too Large"
                                             : "Bad Request";
          Reply r = error_page(code, reason);
          std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason +
                            "\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(r.body.size()) +
                            "\r\nConnection: close\r\n\r\n" + r.body;
          stream.write_all(out, ringlet::Deadline::after(std::chrono::seconds(5)));
          if (log) std::fprintf(stderr, "- - %d refused\n", code);
          ++stats.refused;
          half_close_and_drain(tcp, buf.get(), kBuf);
          return;
        }
        auto& req = parser.head();
        auto busy = stats.now.fetch_add(1) + 1;
        for (auto p = stats.peak.load(); busy > p && !stats.peak.compare_exchange_weak(p, busy);) {
        }
        struct Leave {
          Stats& s;
          ~Leave() { s.now.fetch_sub(1); }
        } leave{stats};
        ++stats.requests;
        if (delay.count() > 0) ringlet::sleep(delay);
        Reply r = files.serve(req);
        if (use_gzip && r.status == 200 && compressible(r.type)) {
          auto ae = req.headers.get("Accept-Encoding");
          if (ae && ae->find("gzip") != std::string_view::npos) {
            r.body = http::detail::compress(r.body, 16 + 15);
            r.extra += "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n";
          }
        }
        bool keep = req.keep_alive;
        std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + r.reason + "\r\nServer: ringlet-http_server\r\n" +
                           "Content-Type: " + r.type + "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n" +
                           r.extra + (keep ? "" : "Connection: close\r\n") + "\r\n";
        if (req.method != "HEAD") head += r.body;
        stream.write_all(head, ringlet::Deadline::after(kWriteTimeout));
        if (log) std::fprintf(stderr, "%s %s %d %zu\n", req.method.c_str(), req.target.c_str(), r.status, r.body.size());
        if (!keep) return;
      }
    };
    std::unique_ptr<ringlet::net::StreamServer> server;
    try {
      server = std::make_unique<ringlet::net::StreamServer>(
          listen,
          [&](ringlet::net::TcpStream conn) {
            conn.set_nodelay(true);  // a response written in pieces must not wait for an ACK
            try {
              if (tls) {
                ringlet::net::TlsStream s{std::move(conn), *tls};
                s.handshake(in_seconds(lim.tls_timeout));
                handle(s, s.tcp(), in_seconds(lim.header_timeout));
                s.shutdown(ringlet::Deadline::after(std::chrono::seconds(1)));
              } else {
                handle(conn, conn, in_seconds(lim.header_timeout));
              }
            } catch (const ringlet::net::TlsError&) {
              ++stats.errors;  // a client that gave up on our certificate, or spoke plain HTTP
            } catch (const std::system_error& e) {
              if (e.code() != std::errc::connection_reset && e.code() != std::errc::broken_pipe &&
                  e.code() != std::errc::timed_out)
                throw;
            }
          },
          opts);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "http_server: %s\n", e.what());
      status = 1;
      return;
    }
    server->start();
    std::printf("http_server: serving %s on %s://%s (engine %s, %u thread%s%s%s)\n", real, tls ? "https" : "http",
                server->address().to_string().c_str(), ringlet::engine(), server->cores(),
                server->cores() == 1 ? "" : "s", delay_ms ? (", delay " + std::to_string(delay_ms) + " ms").c_str() : "",
                use_gzip ? ", gzip" : "");
    std::fflush(stdout);
    int sig = signals->wait();
    signals.reset();
    server->stop(std::chrono::seconds(1));
    std::printf("http_server: %s: %" PRIu64 " requests served, peak %" PRIu64 " at once, %" PRIu64
                " refused (malformed, too large or too slow), %" PRIu64 " TLS failures\n",
                strsignal(sig), stats.requests.load(), stats.peak.load(), stats.refused.load(), stats.errors.load());
  }, run_opts);
  return status;
}
