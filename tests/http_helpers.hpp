// Helpers for the HTTP tests: a raw server whose handler writes whatever bytes a test needs
// (well-formed or hostile), and throwaway TLS certificates made by the openssl command.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "ringlet/net.hpp"
#include "ringlet/ringlet.hpp"

// AddressSanitizer keeps freed memory in quarantine: resident memory says nothing there.
#if defined(__SANITIZE_ADDRESS__)
#define RINGLET_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGLET_TEST_ASAN 1
#endif
#endif

namespace ringlet::test {

// A field of /proc/PID/status in KiB ("VmRSS:", "VmHWM:"); pid "self" for this process.
inline std::size_t proc_kib(const std::string& pid, const char* key) {
  std::ifstream in("/proc/" + pid + "/status");
  for (std::string k; in >> k;) {
    if (k == key) {
      std::size_t v = 0;
      in >> v;
      return v;
    }
  }
  return 0;
}

// Start a process's peak (VmHWM) again from its present RSS (Linux 4.0+). If that is refused,
// the peak since its start counts, which can only make a check against it stricter.
inline void reset_peak(const std::string& pid) {
  if (std::FILE* f = std::fopen(("/proc/" + pid + "/clear_refs").c_str(), "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

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

// A RawServer on a thread of its own, with its own scheduler: for tests whose client is a
// child process, or blocks its thread.
class RawServerThread {
 public:
  explicit RawServerThread(RawServer::Respond respond) {
    thread_ = std::thread([this, respond = std::move(respond)]() mutable {
      ringlet::run([&] {
        RawServer srv(std::move(respond));
        port_ = srv.port();
        ready_.set();
        stop_.wait();
      });
    });
    ready_.wait();
  }
  ~RawServerThread() {
    stop_.set();
    thread_.join();
  }
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  std::uint16_t port() const { return port_; }

 private:
  std::thread thread_;
  Event ready_, stop_;
  std::uint16_t port_ = 0;
};

// Writes prefix, then block again and again until `total` bytes of blocks (never held whole),
// then suffix. False if the peer went away first.
inline bool stream_out(net::TcpStream& c, std::string_view prefix, std::string_view block, std::size_t total,
                       std::string_view suffix = "") {
  try {
    c.write_all(prefix);
    for (std::size_t sent = 0; sent < total; sent += block.size()) c.write_all(block);
    c.write_all(suffix);
    return true;
  } catch (const std::system_error&) {
    return false;
  }
}

// The hostile peer's pieces, for either side: what is sent before the body, without limit.
struct Hostile {
  static constexpr std::size_t kHuge = 128u << 20;  // 128 MB
  // A chunk line's extension: "5;xxxx..." (after a chunked head).
  static std::string ext_block() { return std::string(64 << 10, 'x'); }
  // Trailer fields, 64 bytes each (after "0\r\n").
  static std::string trailer_block() {
    std::string line = "X-Trailer: " + std::string(51, 't') + "\r\n";
    std::string b;
    while (b.size() < (64u << 10)) b += line;
    return b;
  }
  // 100 000 fields of 8 bytes.
  static std::string many_fields() {
    std::string s;
    for (int i = 0; i < 100000; ++i) s += "X-N: v\r\n";
    return s;
  }
};

// A response with the hostile part for the path: /chunk-ext, /trailers, /big-header (a field
// of 1 MB), /many-headers (100 000 fields); anything else is a small "ok". Never closes on
// its own: the client has to stop reading.
inline bool hostile_response(net::TcpStream& c, const RawRequest& r, int) {
  const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string line = r.line();
  std::string path = line.substr(4, line.find(' ', 4) - 4);
  if (path == "/chunk-ext") {
    stream_out(c, chunked + "5;", Hostile::ext_block(), Hostile::kHuge);
  } else if (path == "/trailers") {
    stream_out(c, chunked + "5\r\nhello\r\n0\r\n", Hostile::trailer_block(), Hostile::kHuge);
  } else if (path == "/big-header") {
    stream_out(c, "HTTP/1.1 200 OK\r\nX-Big: ", std::string(64 << 10, 'a'), 1u << 20, "\r\n\r\n");
  } else if (path == "/many-headers") {
    std::string fields = Hostile::many_fields();
    stream_out(c, "HTTP/1.1 200 OK\r\n", fields, fields.size(), "\r\n");
  } else {
    return stream_out(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "", 0);
  }
  return false;
}

// Starts http_server on DIR; returns its port (from the line it prints).
inline std::uint16_t start_http_server(Process& p) {
  std::string first = p.line(10000ms);
  INFO(first << p.err());
  std::smatch m;
  REQUIRE(std::regex_search(first, m, std::regex(R"(://127\.0\.0\.1:(\d+))")));
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

inline Process http_server(const std::string& dir, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"http_server", dir, "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return Process(args);
}

// The pid of this process's child running `name` (at most one at a time), or "".
inline std::string child_pid(const std::string& name) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(opendir("/proc"), closedir);
  while (dirent* e = d ? readdir(d.get()) : nullptr) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string pid, comm, state;
    long ppid = 0;
    if (in >> pid >> comm >> state >> ppid && ppid == getpid() && comm == "(" + name + ")") return pid;
  }
  return "";
}

// A folder removed with what is in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ringlet-site-XXXXXX";
    if (mkdtemp(tmpl)) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) std::system(("rm -rf '" + path + "'").c_str());
  }
  void write(const std::string& rel, const std::string& text) const {
    auto slash = rel.rfind('/');
    if (slash != std::string::npos) std::system(("mkdir -p '" + path + "/" + rel.substr(0, slash) + "'").c_str());
    std::ofstream(path + "/" + rel, std::ios::binary) << text;
  }
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
