// An HTTP/1.1 client on fibers: ringlet::net::http (library ringlet-http).
//
//   ringlet::net::http::Client client;                 // one per program: it pools connections
//   auto r = client.get("https://example.com/");       // parks this fiber only
//   r.status;             // 200
//   r.header("Content-Type");                           // "text/html; charset=UTF-8"
//   r.body;               // decoded (gzip and deflate undone)
//   r.url;                // where it ended up, after redirects
//
// - GET, HEAD, POST (any method through send()), HTTP/1.1 with keep-alive: idle connections
//   are kept per scheme://host:port and reused; one that the server closed while idle is
//   noticed and replaced, and an idempotent request that finds it closed is sent again once.
// - Bodies delimited by Content-Length, chunked, or the end of the connection; HEAD, 1xx,
//   204 and 304 have none. Parsing is Boost.Beast's HTTP parser.
// - Content-Encoding gzip and deflate are decoded (zlib); the size limit applies to the
//   bytes on the wire and to the decoded body, so a small bomb cannot expand past it.
// - Every byte kept before the body counts too: the status line and fields (interim 1xx
//   responses' included) and a chunked body's trailers share max_header; a chunk line (its
//   size and extensions) over 4 KiB is an error, as in Go's net/http. Past either, the fetch
//   fails (TooLarge, "chunk line too long", "trailers too large", "response header larger
//   than the limit") having kept at most the limit and one read.
// - Redirects (301, 302, 303, 307, 308) are followed up to a limit; a chain that comes back
//   to a URL it has visited is a loop and fails at once. 303 (and 301/302 after a POST)
//   turn into GET without a body.
// - Deadlines: connect (per attempt), read (the longest silence between bytes) and total
//   (the whole exchange, redirects included). An enclosing ringlet::Timeout applies too.
// - HTTPS through OpenSSL (tls.hpp): SNI, the system CA store (or ca_file), the host name
//   checked; verify = false skips the checks.
// - Failures throw http::Error, whose kind() says which stage failed (an invalid URL, DNS,
//   connect, TLS, timeout, a malformed response, too large, a redirect loop, ...) and whose
//   what() says it in words, naming the URL.
//
// A Client may be shared by any number of fibers, on any core of a run.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringlet/time.hpp"

namespace ringlet::net::http {

enum class ErrorKind {
  InvalidUrl,     // not an absolute http(s) URL
  Dns,            // the host name did not resolve
  Connect,        // every address refused or was unreachable
  Tls,            // handshake or certificate failure
  Timeout,        // connect, read or total deadline
  Io,             // the connection failed mid-exchange (reset, closed early)
  Protocol,       // a malformed response
  TooLarge,       // the body (on the wire or decoded), the header, the trailers or a chunk line is over its limit
  Decode,         // the gzip/deflate body is corrupt
  TooManyRedirects,
  RedirectLoop,
};
// "invalid-url", "dns", "connect", "tls", "timeout", "io", "protocol", "too-large",
// "decode", "too-many-redirects", "redirect-loop".
const char* to_string(ErrorKind k) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// An absolute http or https URL in normal form (RFC 3986, by uriparser): scheme and host
// in lower case, dot segments removed, percent-encoding normalised, the default port and
// the fragment dropped, an empty path made "/".
class Url {
 public:
  static Url parse(std::string_view text);  // Error{InvalidUrl} naming the text and why
  static std::optional<Url> try_parse(std::string_view text, std::string* why = nullptr);

  // A reference (absolute, "/path", "../x", "?q", "//host/p") resolved against this URL;
  // nullopt if it is malformed or not http(s) (mailto:, javascript:, ...).
  std::optional<Url> resolve(std::string_view reference, std::string* why = nullptr) const;

  const std::string& str() const noexcept { return text_; }
  const std::string& scheme() const noexcept { return scheme_; }  // "http" or "https"
  const std::string& host() const noexcept { return host_; }      // no brackets for IPv6
  std::uint16_t port() const noexcept { return port_; }          // the default filled in
  bool https() const noexcept { return scheme_ == "https"; }
  // "/path?query": what goes on the request line.
  std::string target() const { return text_.substr(target_at_); }
  // "host" or "host:port" (the port only if not the default): the Host header.
  std::string authority() const;
  // "scheme://authority": what a connection may be shared within.
  std::string origin() const { return text_.substr(0, target_at_); }

  friend bool operator==(const Url& a, const Url& b) noexcept { return a.text_ == b.text_; }

 private:
  friend struct UrlAccess;
  std::string text_;
  std::string scheme_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::size_t target_at_ = 0;
};

// Many references resolved against one base URL (a page's links), the base parsed once.
class UrlResolver {
 public:
  explicit UrlResolver(const Url& base);
  ~UrlResolver();
  UrlResolver(const UrlResolver&) = delete;
  UrlResolver& operator=(const UrlResolver&) = delete;
  // As Url::resolve.
  std::optional<Url> resolve(std::string_view reference, std::string* why = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Header fields in order, names compared without case.
class Headers {
 public:
  void add(std::string name, std::string value) { fields_.emplace_back(std::move(name), std::move(value)); }
  // Replace every field of that name with one.
  void set(std::string_view name, std::string value);
  void remove(std::string_view name);
  // The first value of that name, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool has(std::string_view name) const noexcept { return get(name).has_value(); }
  std::size_t size() const noexcept { return fields_.size(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }
  void clear() noexcept { fields_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct Response {
  int status = 0;
  std::string reason;
  int version = 11;             // 10 for HTTP/1.0, 11 for HTTP/1.1
  Headers headers;
  std::string body;             // decoded
  std::string url;              // the final URL, after redirects
  std::vector<std::string> redirects;  // the URLs redirected from, in order
  std::uint64_t wire_bytes = 0;  // body bytes as received (before decoding)
  bool reused_connection = false;

  std::string_view header(std::string_view name) const noexcept { return headers.get(name).value_or(""); }
  // The media type of Content-Type, lower case, without parameters ("text/html"); "" if none.
  std::string content_type() const;
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;      // sent as given; they replace the client's defaults of the same name
  std::string body;     // with Content-Length (POST and PUT always send one)
  // Earlier than the client's total timeout, if given.
  Deadline deadline = Deadline::never();
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // each connection attempt
  std::chrono::milliseconds read_timeout{30'000};     // longest wait for the next bytes
  std::chrono::milliseconds total_timeout{60'000};    // the whole exchange; 0 = none
  std::size_t max_body = 16u << 20;     // bytes, on the wire and decoded
  // Bytes before the body: status line and fields (interim 1xx responses' too), and with
  // them a chunked body's trailers. (A chunk line has a fixed limit of 4 KiB.)
  std::size_t max_header = 64u << 10;
  int max_redirects = 10;
  bool follow_redirects = true;
  bool decompress = true;               // send Accept-Encoding: gzip, deflate and decode
  bool verify = true;                   // TLS: check the certificate and the host name
  std::string ca_file;                  // TLS: trust these CAs instead of the system's
  std::string user_agent = "ringlet-http/0.1";
  std::size_t max_idle_per_host = 16;   // idle connections kept per scheme://host:port
  std::chrono::milliseconds idle_timeout{30'000};  // an idle connection older is dropped
};

struct ClientStats {
  std::uint64_t requests = 0;      // exchanges sent (each redirect hop counts)
  std::uint64_t connections = 0;   // connections opened
  std::uint64_t reused = 0;        // exchanges on a kept-alive connection
  std::uint64_t retried = 0;       // sent again after a kept connection turned out closed
};

class Client {
 public:
  explicit Client(ClientOptions o = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Response get(std::string_view url, Deadline d = Deadline::never());
  Response head(std::string_view url, Deadline d = Deadline::never());
  Response post(std::string_view url, std::string body,
                std::string_view content_type = "application/octet-stream", Deadline d = Deadline::never());
  Response send(Request req);

  // Close every idle connection.
  void close_idle() noexcept;
  ClientStats stats() const noexcept;
  const ClientOptions& options() const noexcept { return opts_; }

 private:
  struct Impl;
  ClientOptions opts_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringlet::net::http
