// Helpers for the HTTP tests: a raw server whose handler writes whatever bytes a test needs
// (well-formed or hostile), and throwaway TLS certificates made by the openssl command.
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "ringlet/net.hpp"
#include "ringlet/ringlet.hpp"

namespace ringlet::test {

// One request as the raw server read it: the head, and the body if Content-Length said so.
struct RawRequest {
  std::string head;
  std::string body;
  std::string line() const { return head.substr(0, head.find("\r\n")); }
};

// Reads the next request from c into r; false at end of stream.
inline bool read_request(net::TcpStream& c, std::string& pending, RawRequest& r) {
  char buf[8192];
  std::size_t end;
  while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
    std::size_t n = c.read_some({buf, sizeof buf});
    if (n == 0) return false;
    pending.append(buf, n);
  }
  r.head = pending.substr(0, end + 4);
  pending.erase(0, end + 4);
  std::size_t len = 0;
  for (const char* key : {"\r\nContent-Length: ", "\r\ncontent-length: "})
    if (auto at = r.head.find(key); at != std::string::npos) len = std::stoul(r.head.substr(at + std::strlen(key)));
  while (pending.size() < len) {
    std::size_t n = c.read_some({buf, sizeof buf});
    if (n == 0) return false;
    pending.append(buf, n);
  }
  r.body = pending.substr(0, len);
  pending.erase(0, len);
  return true;
}

// A StreamServer on 127.0.0.1 in the calling scheduler: for each request, respond(conn,
// request, n) writes the answer (n counts requests from 0); return false to close.
class RawServer {
 public:
  using Respond = std::function<bool(net::TcpStream&, const RawRequest&, int n)>;
  explicit RawServer(Respond respond)
      : respond_(std::move(respond)),
        server_("127.0.0.1:0", [this](net::TcpStream& c) {
          ++connections;
          std::string pending;
          RawRequest r;
          while (read_request(c, pending, r))
            if (!respond_(c, r, requests++)) return;
        }) {
    server_.start();
  }
  ~RawServer() { server_.stop(std::chrono::milliseconds(0)); }
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(server_.address().port()) + std::string(path);
  }
  std::uint16_t port() const { return server_.address().port(); }
  int connections = 0;
  int requests = 0;

 private:
  Respond respond_;
  net::StreamServer server_;
};

inline std::string response(std::string_view body, std::string_view extra = "", int status = 200) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
         std::string(extra) + "\r\n" + std::string(body);
}

// A self-signed certificate and key (CN and SAN as given) in a fresh temporary folder; empty
// paths if the openssl command is not there.
struct Cert {
  std::string dir, cert, key;
  ~Cert() {
    if (!dir.empty()) std::system(("rm -rf '" + dir + "'").c_str());
  }
};
inline bool make_cert(Cert& c, const std::string& san = "DNS:localhost,IP:127.0.0.1") {
  char tmpl[] = "/tmp/ringlet-cert-XXXXXX";
  if (!mkdtemp(tmpl)) return false;
  c.dir = tmpl;
  c.cert = c.dir + "/cert.pem";
  c.key = c.dir + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -keyout '" + c.key + "' -out '" + c.cert +
                    "' -days 2 -subj /CN=localhost -addext subjectAltName=" + san + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace ringlet::test
