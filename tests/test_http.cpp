// ringlet::net::http: URLs, the client against raw local servers (well-formed and hostile),
// keep-alive, redirects, limits, deadlines, and HTTPS with self-signed certificates.
#include <string>
#include <vector>

#include "helpers.hpp"
#include "http_helpers.hpp"
#include "parse.hpp"
#include "ringlet/net/http.hpp"
#include "ringlet/net/tls.hpp"

using namespace std::chrono_literals;
using ringlet::net::TcpStream;
using ringlet::test::RawRequest;
using ringlet::test::RawServer;
using ringlet::test::response;
namespace http = ringlet::net::http;

namespace {

using ringlet::net::http::detail::compress;

// The kind of the http::Error fn throws (fails the test if it throws none).
template <class Fn>
http::ErrorKind error_kind(Fn fn, std::string* what = nullptr) {
  try {
    fn();
  } catch (const http::Error& e) {
    if (what) *what = e.what();
    return e.kind();
  }
  FAIL("no http::Error thrown");
  return http::ErrorKind::Io;
}

}  // namespace

TEST_CASE("Url parses, normalises and resolves references", "[http]") {
  auto u = http::Url::parse("HTTP://Example.COM:80/a/./b/../c?q=1#frag");
  CHECK(u.str() == "http://example.com/a/c?q=1");
  CHECK(u.host() == "example.com");
  CHECK(u.port() == 80);
  CHECK(u.target() == "/a/c?q=1");
  CHECK(u.origin() == "http://example.com");
  CHECK(http::Url::parse("https://h:8443").str() == "https://h:8443/");
  CHECK(http::Url::parse("https://h:8443").authority() == "h:8443");
  CHECK(http::Url::parse("http://[::1]:8080/x").host() == "::1");
  CHECK(http::Url::parse("http://[::1]:8080/x").str() == "http://[::1]:8080/x");
  CHECK(http::Url::parse("http://h/%7euser/a%2fb").str() == "http://h/~user/a%2Fb");
  CHECK(http::Url::parse("  http://h/a b\n").str() == "http://h/a%20b");

  auto base = http::Url::parse("http://h/dir/page.html?x=1");
  CHECK(base.resolve("other.html")->str() == "http://h/dir/other.html");
  CHECK(base.resolve("../up.html")->str() == "http://h/up.html");
  CHECK(base.resolve("/abs")->str() == "http://h/abs");
  CHECK(base.resolve("?y=2")->str() == "http://h/dir/page.html?y=2");
  CHECK(base.resolve("#only-a-fragment")->str() == "http://h/dir/page.html?x=1");
  CHECK(base.resolve("//other:81/p")->str() == "http://other:81/p");
  CHECK(base.resolve("HTTPS://H2/Z#f")->str() == "https://h2/Z");
  CHECK(base.resolve("./a/../../../b")->str() == "http://h/b");

  std::string why;
  CHECK_FALSE(base.resolve("mailto:someone@example.com", &why));
  CHECK(why.find("mailto") != std::string::npos);
  CHECK_FALSE(base.resolve("javascript:void(0)"));
  CHECK_FALSE(http::Url::try_parse("/relative", &why));
  CHECK(why.find("no scheme") != std::string::npos);
  CHECK_FALSE(http::Url::try_parse("http://h:99999/", &why));
  CHECK(why.find("port") != std::string::npos);
  CHECK_FALSE(http::Url::try_parse("http:///nohost"));
  CHECK_FALSE(http::Url::try_parse("ftp://h/"));
  CHECK(error_kind([] { http::Url::parse("http://[bad/"); }) == http::ErrorKind::InvalidUrl);
}

TEST_CASE("http client: Content-Length bodies on one kept-alive connection", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest& r, int n) {
      CHECK(r.line() == "GET /p" + std::to_string(n) + "?x=1 HTTP/1.1");
      CHECK(r.head.find("\r\nHost: 127.0.0.1:") != std::string::npos);
      CHECK(r.head.find("\r\nUser-Agent: test-agent\r\n") != std::string::npos);
      c.write_all(response("body " + std::to_string(n), "Content-Type: Text/HTML; charset=utf-8\r\nX-Thing: a\r\n"));
      return true;
    });
    http::ClientOptions o;
    o.user_agent = "test-agent";
    http::Client client{o};
    for (int i = 0; i < 3; ++i) {
      auto r = client.get(srv.url("/p" + std::to_string(i) + "?x=1#frag"));
      CHECK(r.status == 200);
      CHECK(r.body == "body " + std::to_string(i));
      CHECK(r.content_type() == "text/html");
      CHECK(r.header("x-thing") == "a");
      CHECK(r.reused_connection == (i > 0));
    }
    CHECK(srv.connections == 1);
    CHECK(client.stats().connections == 1);
    CHECK(client.stats().reused == 2);
  });
}

TEST_CASE("http client: chunked bodies, trickled a few bytes at a time, with trailers", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest&, int) {
      std::string wire =
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n,\r\n"
          "6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
      for (std::size_t i = 0; i < wire.size(); i += 3) {
        c.write_all(std::string_view(wire).substr(i, 3));
        ringlet::sleep(100us);
      }
      return true;
    });
    http::Client client;
    auto r = client.get(srv.url());
    CHECK(r.body == "hello, world");
    auto again = client.get(srv.url());  // the connection is still in step
    CHECK(again.body == "hello, world");
    CHECK(srv.connections == 1);
  });
}

TEST_CASE("http client: a body delimited by the connection's end", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest&, int) {
      c.write_all("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
      ringlet::sleep(20ms);
      c.write_all(" of the stream");
      return false;
    });
    http::Client client;
    CHECK(client.get(srv.url()).body == "until the end of the stream");
    CHECK(client.get(srv.url()).body == "until the end of the stream");
    CHECK(srv.connections == 2);  // not kept: it was closed
  });
}

TEST_CASE("http client: gzip and deflate (zlib and raw) are decoded", "[http]") {
  ringlet::test::in_scheduler([] {
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i) + " of some compressible text\n";
    RawServer srv([&](TcpStream& c, const RawRequest& r, int) {
      CHECK(r.head.find("\r\nAccept-Encoding: gzip, deflate\r\n") != std::string::npos);
      std::string path = r.line().substr(4, r.line().find(' ', 4) - 4);
      if (path == "/gzip") c.write_all(response(compress(text, 16 + 15), "Content-Encoding: gzip\r\n"));
      if (path == "/zlib") c.write_all(response(compress(text, 15), "Content-Encoding: deflate\r\n"));
      if (path == "/raw") c.write_all(response(compress(text, -15), "Content-Encoding: deflate\r\n"));
      if (path == "/chunked-gzip") {
        std::string z = compress(text, 16 + 15);
        std::string wire = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t i = 0; i < z.size(); i += 100) {
          auto piece = z.substr(i, 100);
          char hex[16];
          std::snprintf(hex, sizeof hex, "%zx\r\n", piece.size());
          wire += hex + piece + "\r\n";
        }
        c.write_all(wire + "0\r\n\r\n");
      }
      return true;
    });
    http::Client client;
    for (const char* p : {"/gzip", "/zlib", "/raw", "/chunked-gzip"}) {
      INFO(p);
      auto r = client.get(srv.url(p));
      CHECK(r.body == text);
      CHECK(r.wire_bytes < text.size() / 4);
    }
  });
}

TEST_CASE("http client: corrupt, cut-short and oversized compressed bodies are errors", "[http]") {
  ringlet::test::in_scheduler([] {
    std::string zeros(50u << 20, '\0');
    std::string bomb = compress(zeros, 16 + 15);  // ~50 KB that would expand to 50 MiB
    RawServer srv([&](TcpStream& c, const RawRequest& r, int) {
      std::string path = r.line().substr(4, r.line().find(' ', 4) - 4);
      std::string good = compress("some text that is long enough to matter", 16 + 15);
      if (path == "/corrupt") c.write_all(response("\x1f\x8b\x09\x01garbage-garbage-garbage", "Content-Encoding: gzip\r\n"));
      if (path == "/short") c.write_all(response(good.substr(0, good.size() - 6), "Content-Encoding: gzip\r\n"));
      if (path == "/bomb") c.write_all(response(bomb, "Content-Encoding: gzip\r\n"));
      return true;
    });
    http::ClientOptions o;
    o.max_body = 1u << 20;
    http::Client client{o};
    std::string what;
    CHECK(error_kind([&] { client.get(srv.url("/corrupt")); }, &what) == http::ErrorKind::Decode);
    INFO(what);
    CHECK(what.find("corrupt gzip body") != std::string::npos);
    CHECK(what.find(srv.url("/corrupt")) != std::string::npos);
    CHECK(error_kind([&] { client.get(srv.url("/short")); }) == http::ErrorKind::Decode);
    CHECK(error_kind([&] { client.get(srv.url("/bomb")); }, &what) == http::ErrorKind::TooLarge);
    CHECK(what.find("decoded body larger than the limit of 1 MiB") != std::string::npos);
  });
}

TEST_CASE("http client: redirects are followed, limited, and loops are caught", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest& r, int) {
      std::string line = r.line();
      std::string path = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
      auto redirect = [&](int code, std::string to) {
        c.write_all("HTTP/1.1 " + std::to_string(code) + " R\r\nLocation: " + to + "\r\nContent-Length: 0\r\n\r\n");
      };
      if (path == "/a") redirect(301, "b");                // relative
      else if (path == "/b") redirect(302, "/dir/../c?k=v");
      else if (path == "/c?k=v") c.write_all(response("at c"));
      else if (path == "/post") redirect(303, "/echo");
      else if (path == "/keep") redirect(307, "/echo");
      else if (path == "/echo") c.write_all(response(line + "|" + r.body));
      else if (path == "/loop1") redirect(302, "/loop2");
      else if (path == "/loop2") redirect(302, "/loop1");
      else if (path.starts_with("/chain")) redirect(302, "/chain" + std::to_string(std::stoi(path.substr(6)) + 1));
      else if (path == "/bad") redirect(302, "http://[nope");
      return true;
    });
    http::Client client;
    auto r = client.get(srv.url("/a"));
    CHECK(r.status == 200);
    CHECK(r.body == "at c");
    CHECK(r.url == srv.url("/c?k=v"));
    CHECK(r.redirects == std::vector<std::string>{srv.url("/a"), srv.url("/b")});

    CHECK(client.post(srv.url("/post"), "data").body == "GET /echo HTTP/1.1|");       // 303: GET, no body
    CHECK(client.post(srv.url("/keep"), "data").body == "POST /echo HTTP/1.1|data");  // 307 keeps both

    std::string what;
    CHECK(error_kind([&] { client.get(srv.url("/loop1")); }, &what) == http::ErrorKind::RedirectLoop);
    CHECK(what.find("/loop1 -> " + srv.url("/loop2") + " -> " + srv.url("/loop1")) != std::string::npos);
    CHECK(error_kind([&] { client.get(srv.url("/chain0")); }, &what) == http::ErrorKind::TooManyRedirects);
    CHECK(what.find("more than 10 redirects") != std::string::npos);
    CHECK(error_kind([&] { client.get(srv.url("/bad")); }) == http::ErrorKind::InvalidUrl);

    http::ClientOptions o;
    o.follow_redirects = false;
    http::Client manual{o};
    auto m = manual.get(srv.url("/a"));
    CHECK(m.status == 301);
    CHECK(m.header("Location") == "b");
  });
}

TEST_CASE("http client: the size limit stops a body before it is read", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest& r, int) {
      if (r.line().find("/declared") != std::string::npos) {
        c.write_all("HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n");  // never sent
        ringlet::sleep(5s);
      } else {
        c.write_all("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        std::string chunk = "4000\r\n" + std::string(0x4000, 'x') + "\r\n";
        for (int i = 0; i < 100; ++i) c.write_all(chunk);
        c.write_all("0\r\n\r\n");
      }
      return true;
    });
    http::ClientOptions o;
    o.max_body = 100000;
    http::Client client{o};
    auto t0 = ringlet::Clock::now();
    std::string what;
    CHECK(error_kind([&] { client.get(srv.url("/declared")); }, &what) == http::ErrorKind::TooLarge);
    CHECK(ringlet::Clock::now() - t0 < 2s);
    CHECK(what.find("body larger than the limit of 100000 bytes") != std::string::npos);
    CHECK(error_kind([&] { client.get(srv.url("/chunked")); }) == http::ErrorKind::TooLarge);
  });
}

TEST_CASE("http client: read, total and connect deadlines; refused connections", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer silent([](TcpStream& c, const RawRequest&, int) {
      c.write_all("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");  // then nothing more
      ringlet::sleep(10s);
      return false;
    });
    http::ClientOptions o;
    o.read_timeout = 150ms;
    http::Client client{o};
    auto t0 = ringlet::Clock::now();
    std::string what;
    CHECK(error_kind([&] { client.get(silent.url()); }, &what) == http::ErrorKind::Timeout);
    CHECK(ringlet::Clock::now() - t0 >= 140ms);
    CHECK(ringlet::Clock::now() - t0 < 2s);
    CHECK(what.find("timed out: no data from 127.0.0.1:") != std::string::npos);

    // A trickle that never goes silent for long is stopped by the total deadline.
    RawServer trickle([](TcpStream& c, const RawRequest&, int) {
      c.write_all("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
      for (int i = 0; i < 1000; ++i) {
        c.write_all("x");
        ringlet::sleep(20ms);
      }
      return false;
    });
    http::ClientOptions t;
    t.read_timeout = 1s;
    t.total_timeout = 300ms;
    http::Client total{t};
    t0 = ringlet::Clock::now();
    CHECK(error_kind([&] { total.get(trickle.url()); }) == http::ErrorKind::Timeout);
    CHECK(ringlet::Clock::now() - t0 < 1s);

    // A deadline passed in by the caller counts too.
    http::Client plain;
    t0 = ringlet::Clock::now();
    CHECK(error_kind([&] { plain.get(trickle.url(), ringlet::Deadline::after(200ms)); }) == http::ErrorKind::Timeout);
    CHECK(ringlet::Clock::now() - t0 < 1s);

    // Nothing listens on a port just closed.
    std::uint16_t port;
    {
      auto l = ringlet::net::TcpListener::bind("127.0.0.1:0");
      port = l.local_address().port();
    }
    CHECK(error_kind([&] { plain.get("http://127.0.0.1:" + std::to_string(port) + "/"); }, &what) ==
          http::ErrorKind::Connect);
    CHECK(what.find("Connection refused") != std::string::npos);
  });
}

TEST_CASE("http client: a kept connection the server closed is replaced, the request sent again", "[http]") {
  ringlet::test::in_scheduler([] {
    // Keeps nothing alive but says nothing: HTTP/1.1 without "Connection: close".
    RawServer srv([](TcpStream& c, const RawRequest&, int n) {
      c.write_all(response("n" + std::to_string(n)));
      return false;
    });
    http::Client client;
    CHECK(client.get(srv.url()).body == "n0");
    ringlet::sleep(20ms);  // the server's close has arrived: found before reuse
    CHECK(client.get(srv.url()).body == "n1");
    // Closed at the moment of reuse: the peek sees nothing yet, the exchange fails, retried.
    RawServer late([](TcpStream& c, const RawRequest&, int n) {
      c.write_all(response("m" + std::to_string(n)));
      ringlet::sleep(30ms);
      return false;
    });
    CHECK(client.get(late.url()).body == "m0");
    CHECK(client.get(late.url()).body == "m1");
    CHECK(late.connections == 2);
  });
}

TEST_CASE("http client: HEAD, POST bodies and interim 100 responses", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest& r, int) {
      if (r.line().starts_with("HEAD")) {
        c.write_all("HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nContent-Type: text/html\r\n\r\n");
      } else if (r.line().starts_with("POST")) {
        c.write_all("HTTP/1.1 100 Continue\r\n\r\n");
        c.write_all(response("got " + r.body + " as " +
                             r.head.substr(r.head.find("Content-Type: ") + 14,
                                           r.head.find("\r\n", r.head.find("Content-Type: ")) -
                                               r.head.find("Content-Type: ") - 14)));
      }
      return true;
    });
    http::Client client;
    auto h = client.head(srv.url());
    CHECK(h.status == 200);
    CHECK(h.body.empty());
    CHECK(h.header("Content-Length") == "12345");
    auto p = client.post(srv.url(), "a=1&b=2", "application/x-www-form-urlencoded");
    CHECK(p.status == 200);
    CHECK(p.body == "got a=1&b=2 as application/x-www-form-urlencoded");
    CHECK(srv.connections == 1);
  });
}

TEST_CASE("http client: malformed responses from a hostile server are errors, not crashes", "[http]") {
  ringlet::test::in_scheduler([] {
    const std::vector<std::pair<std::string, http::ErrorKind>> cases = {
        {"garbage\r\n\r\n", http::ErrorKind::Protocol},
        {"HTTP/1.1 abc OK\r\n\r\n", http::ErrorKind::Protocol},
        {"HTTP/1.1 002 OK\r\nContent-Length: 0\r\n\r\n", http::ErrorKind::Protocol},  // found by the fuzzer
        {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx", http::ErrorKind::Protocol},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", http::ErrorKind::Protocol},
        {"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", http::ErrorKind::Protocol},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", http::ErrorKind::Protocol},
        {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http::ErrorKind::Protocol},
        {std::string("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 27), http::ErrorKind::Protocol},
        {"HTTP/1.1 200 OK\r\nX: " + std::string(100000, 'a') + "\r\n\r\n", http::ErrorKind::TooLarge},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", http::ErrorKind::Io},
        {"", http::ErrorKind::Io},
        {"HTTP/1.1 200", http::ErrorKind::Io},
    };
    RawServer srv([&](TcpStream& c, const RawRequest& r, int) {
      int i = std::stoi(r.line().substr(5));
      c.write_all(cases[static_cast<std::size_t>(i)].first);
      return false;
    });
    http::Client client;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      INFO("case " << i);
      std::string what;
      CHECK(error_kind([&] { client.get(srv.url("/" + std::to_string(i))); }, &what) == cases[i].second);
      CHECK(!what.empty());
    }
  });
}

TEST_CASE("http client: fifty requests at once take one delay, not fifty", "[http]") {
  ringlet::test::in_scheduler([] {
    RawServer srv([](TcpStream& c, const RawRequest&, int) {
      ringlet::sleep(100ms);
      c.write_all(response("slow"));
      return true;
    });
    http::Client client;
    auto t0 = ringlet::Clock::now();
    std::vector<ringlet::Greenlet<std::string>> gs;
    for (int i = 0; i < 50; ++i) gs.push_back(ringlet::spawn([&] { return client.get(srv.url()).body; }));
    for (auto& g : gs) CHECK(g.get() == "slow");
    auto took = ringlet::Clock::now() - t0;
    CHECK(took >= 100ms);
    CHECK(took < 1s);  // in turn it would be 5 s
    CHECK(srv.connections == 50);
  });
}

TEST_CASE("https: verification against a self-signed certificate fails clearly; insecure and ca_file work",
          "[http][tls]") {
  ringlet::test::Cert cert, other;
  if (!ringlet::test::make_cert(cert) || !ringlet::test::make_cert(other, "DNS:localhost"))
    RINGLET_SKIP("the openssl command is not installed (scripts/setup.sh installs it)");
  ringlet::test::in_scheduler([&] {
    auto ctx = ringlet::net::TlsContext::server(cert.cert, cert.key);
    auto name_only = ringlet::net::TlsContext::server(other.cert, other.key);
    auto serve = [](const ringlet::net::TlsContext& c) {
      return [&c](TcpStream conn) {
        try {
          ringlet::net::TlsStream s{std::move(conn), c};
          s.handshake(2s);
          char buf[4096];
          std::string req;
          while (req.find("\r\n\r\n") == std::string::npos) {
            std::size_t n = s.read_some({buf, sizeof buf}, 2s);
            if (n == 0) return;
            req.append(buf, n);
          }
          s.write_all(response("secret " + s.protocol() + " sni=" + s.server_name()));
          s.shutdown();
        } catch (const ringlet::net::TlsError&) {
          // the client refused our certificate: expected in some cases
        }
      };
    };
    ringlet::net::StreamServer srv{"127.0.0.1:0", serve(ctx)};
    ringlet::net::StreamServer srv2{"127.0.0.1:0", serve(name_only)};
    srv.start();
    srv2.start();
    std::string port = std::to_string(srv.address().port());
    std::string port2 = std::to_string(srv2.address().port());

    http::Client strict;  // the system's CAs: our certificate is not among them
    std::string what;
    CHECK(error_kind([&] { strict.get("https://localhost:" + port + "/"); }, &what) == http::ErrorKind::Tls);
    CHECK(what.find("certificate verify failed: self-signed certificate") != std::string::npos);

    http::ClientOptions insecure;
    insecure.verify = false;
    http::Client loose{insecure};
    auto r = loose.get("https://127.0.0.1:" + port + "/");
    CHECK(r.status == 200);
    CHECK(r.body.starts_with("secret TLSv1."));

    http::ClientOptions trusted;
    trusted.ca_file = cert.cert;
    http::Client ca{trusted};
    auto named = ca.get("https://localhost:" + port + "/").body;
    CHECK(named.starts_with("secret"));
    CHECK(named.ends_with(" sni=localhost"));  // the name went out as SNI
    auto by_ip = ca.get("https://127.0.0.1:" + port + "/").body;
    CHECK(by_ip.starts_with("secret"));  // checked against the IP SAN
    CHECK(by_ip.ends_with(" sni="));     // an IP literal is sent no SNI (RFC 6066)

    // A certificate valid for "localhost" only, reached by IP: the name check fails.
    http::ClientOptions trusted2;
    trusted2.ca_file = other.cert;
    http::Client ca2{trusted2};
    CHECK(ca2.get("https://localhost:" + port2 + "/").status == 200);
    CHECK(error_kind([&] { ca2.get("https://127.0.0.1:" + port2 + "/"); }, &what) == http::ErrorKind::Tls);
    CHECK(what.find("IP address mismatch") != std::string::npos);

    // Plain HTTP spoken to a TLS port, and TLS to a plain port: errors, not hangs.
    ringlet::net::StreamServer plain{"127.0.0.1:0", [](TcpStream& c) {
      c.write_all("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    }};
    plain.start();
    CHECK(error_kind([&] { loose.get("https://127.0.0.1:" + std::to_string(plain.address().port()) + "/"); },
                     &what) == http::ErrorKind::Tls);
    CHECK(what.find("wrong version number") != std::string::npos);
    plain.stop(0ms);
    srv.stop(0ms);
    srv2.stop(0ms);
  });
}
