// examples/crawler as a process against local servers: examples/http_server, python3's
// http.server, and a hostile in-process server. The crawled set, limits, concurrency,
// timing, HTTPS, malformed responses and Ctrl-C.
#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "http_helpers.hpp"

using namespace std::chrono_literals;
using ringlet::test::Process;

namespace {

using ringlet::test::TempDir;
using ringlet::test::http_server;
using ringlet::test::start_http_server;

std::string page(const std::vector<std::string>& hrefs, const std::string& head = "") {
  std::string s = "<!doctype html><html><head>" + head + "</head><body>";
  for (const auto& h : hrefs) s += "<a href=\"" + h + "\">link</a>\n";
  return s + "</body></html>\n";
}

// The test site: cycles, relative/absolute links, fragments, a <base>, a 404, a link to
// another host name (the same server as "localhost"), a robots.txt rule, a binary file.
void write_site(const TempDir& d, std::uint16_t port) {
  std::string self = "http://127.0.0.1:" + std::to_string(port);
  std::string other = "http://localhost:" + std::to_string(port);
  d.write("index.html", page({"a.html", "/b.html#x", "sub/", self + "/c.html", "missing.html", other + "/a.html",
                              "private/secret.html", "mailto:x@example.com", "#top"}));
  d.write("a.html", page({"index.html", "b.html", "sub/deep.html", "image.png"}));
  d.write("b.html", page({"./a.html#frag", "c.html"}));
  d.write("c.html", page({"deep.html", "../index.html"}, "<base href=\"/sub/\">"));
  d.write("sub/index.html", page({"deep.html", "../c.html"}));
  d.write("sub/deep.html", page({"deeper.html"}));
  d.write("sub/deeper.html", page({"nowhere.html"}));
  d.write("private/secret.html", page({"../a.html"}));
  d.write("robots.txt", "User-agent: *\nDisallow: /private/\n");
  std::string png = "\x89PNG\r\n\x1a\n";
  for (int i = 0; i < 2000; ++i) png += static_cast<char>(i * 7);
  d.write("image.png", png);
}

const std::set<std::string> kAll = {"/",          "/a.html",    "/b.html",        "/c.html",
                                    "/index.html", "/missing.html", "/image.png",  "/sub/",
                                    "/sub/deep.html", "/sub/deeper.html", "/sub/nowhere.html"};
const std::set<std::string> kDepth1 = {"/", "/a.html", "/b.html", "/c.html", "/missing.html", "/sub/"};

std::string field(const std::string& line, const std::string& name) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex("\"" + name + "\":(\"((\\\\.|[^\"\\\\])*)\"|[^,}]*)")))
    return m[2].matched ? m[2].str() : m[1].str();
  return "";
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Paths of the URLs crawled, with the prefix removed.
std::set<std::string> paths(const std::vector<std::string>& lines, const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& l : lines) {
    std::string u = field(l, "url");
    CHECK(u.starts_with(prefix));
    out.insert(u.substr(prefix.size()));
  }
  return out;
}

// "peak N at once" from http_server's closing line.
int server_peak(Process& p) {
  p.signal(SIGTERM);
  CHECK(p.wait(10000ms) == 0);
  std::smatch m;
  REQUIRE(std::regex_search(p.out(), m, std::regex(R"((\d+) requests served, peak (\d+) at once)")));
  return std::stoi(m[2]);
}

struct Crawl {
  int status;
  std::vector<std::string> lines;
  std::string err;
};

Crawl crawl(std::vector<std::string> args, std::chrono::milliseconds limit = 60000ms) {
  TempDir out;
  std::vector<std::string> full{"crawler"};
  full.insert(full.end(), args.begin(), args.end());
  full.insert(full.end(), {"--output", out.path + "/out.jsonl"});
  Process p(full);
  int status = p.wait(limit);
  INFO(p.err());
  return {status, read_lines(out.path + "/out.jsonl"), p.err()};
}

}  // namespace

TEST_CASE("crawler: the generated site, crawled to exactly the expected pages", "[crawler]") {
  TempDir site;
  auto server = http_server(site.path, {"--gzip"});
  auto port = start_http_server(server);
  write_site(site, port);
  std::string root = "http://127.0.0.1:" + std::to_string(port);

  auto c = crawl({root + "/", "--depth", "10", "--concurrency", "4"});
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(paths(c.lines, root) == kAll);
  for (const auto& l : c.lines) {
    std::string u = field(l, "url");
    INFO(l);
    if (u.ends_with("missing.html") || u.ends_with("nowhere.html")) {
      CHECK(field(l, "status") == "404");
      CHECK(field(l, "error") == "HTTP 404 Not Found");
    } else {
      CHECK(field(l, "status") == "200");
      CHECK(field(l, "error") == "null");
    }
    if (u.ends_with(".png")) CHECK(field(l, "content_type") == "image/png");
    if (u == root + "/") {
      CHECK(field(l, "links") == "8");  // "#top" is this page (seen already)
      CHECK(field(l, "invalid_links") == "1");  // mailto:
      CHECK(field(l, "depth") == "0");
    }
    if (u.ends_with("/sub/deeper.html")) CHECK(field(l, "depth") == "3");
  }
  CHECK(c.err.find("crawled 11 pages") != std::string::npos);
  CHECK(c.err.find("1 blocked by robots.txt") != std::string::npos);

  auto d1 = crawl({root + "/", "--depth", "1"});
  CHECK(paths(d1.lines, root) == kDepth1);
  auto n3 = crawl({root + "/", "--max-pages", "3", "--concurrency", "1"});
  CHECK(n3.lines.size() == 3);
  CHECK(n3.err.find("(page limit)") != std::string::npos);
  // Following other hosts too: the "localhost" link is now in.
  auto any = crawl({root + "/", "--any-host", "--depth", "1"});
  CHECK(paths(any.lines, "http://").count("localhost:" + std::to_string(port) + "/a.html") == 1);
  // Robots ignored on request.
  auto norobots = crawl({root + "/", "--no-robots", "--depth", "1"});
  CHECK(paths(norobots.lines, root).count("/private/secret.html") == 1);
}

TEST_CASE("crawler: iframe src and meta refresh followed, script text and nofollow pages not", "[crawler]") {
  TempDir site;
  auto server = http_server(site.path, {});
  auto port = start_http_server(server);
  std::string root = "http://127.0.0.1:" + std::to_string(port);
  site.write("index.html", "<!doctype html><script>document.write('<a href=\"ghost.html\">')</script>"
                           "<!-- <a href=\"ghost2.html\"> --><iframe src=framed.html></iframe>"
                           "<a href=refresh.html>r</a><a href=robots-meta.html>m</a>");
  site.write("framed.html", "<p>in a frame</p>");
  site.write("refresh.html", "<meta http-equiv=\"refresh\" content=\"0; url=target.html\">");
  site.write("target.html", "<p>target</p>");
  site.write("robots-meta.html", "<meta name=\"robots\" content=\"noindex,nofollow\"><a href=hidden.html>h</a>");
  site.write("hidden.html", "<p>not reached</p>");
  site.write("ghost.html", "<p>not reached</p>");
  site.write("ghost2.html", "<p>not reached</p>");
  auto c = crawl({root + "/", "--depth", "5", "--no-robots"});
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(paths(c.lines, root) ==
        std::set<std::string>{"/", "/framed.html", "/refresh.html", "/target.html", "/robots-meta.html"});
  for (const auto& l : c.lines) {
    INFO(l);
    bool meta = field(l, "url").ends_with("/robots-meta.html");
    CHECK(field(l, "nofollow") == (meta ? "true" : ""));
    if (meta) CHECK(field(l, "links") == "0");
  }
}

TEST_CASE("crawler: the same site from python3 -m http.server", "[crawler]") {
  TempDir site;
  Process py({"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", site.path});
  std::string first = py.line(10000ms);
  std::smatch m;
  if (!std::regex_search(first, m, std::regex(R"(port (\d+))"))) RINGLET_SKIP("python3 -m http.server did not start: " + first + py.err());
  auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
  write_site(site, port);
  std::string root = "http://127.0.0.1:" + std::to_string(port);
  auto c = crawl({root + "/", "--depth", "10"});
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(paths(c.lines, root) == kAll);
}

TEST_CASE("crawler: the per-host limit holds, and N pages at delay d take about ceil(N/C) d", "[crawler]") {
  TempDir site;
  std::vector<std::string> hrefs;
  for (int i = 0; i < 40; ++i) {
    hrefs.push_back("p" + std::to_string(i) + ".html");
    site.write("p" + std::to_string(i) + ".html", page({}));
  }
  site.write("index.html", page(hrefs));
  {
    auto server = http_server(site.path, {"--delay", "50"});
    auto port = start_http_server(server);
    auto c = crawl({"http://127.0.0.1:" + std::to_string(port) + "/", "--concurrency", "20", "--per-host", "3"});
    CHECK(c.lines.size() == 41);
    CHECK(server_peak(server) == 3);  // reached, never exceeded
  }
  {
    auto server = http_server(site.path, {"--delay", "200"});
    auto port = start_http_server(server);
    auto t0 = std::chrono::steady_clock::now();
    auto c = crawl({"http://127.0.0.1:" + std::to_string(port) + "/", "--concurrency", "10", "--per-host", "10",
                    "--no-robots"});
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(c.lines.size() == 41);
    // The index, then 40 pages 10 at a time: 200 ms + 4 x 200 ms = 1 s (in turn: 8.2 s).
    INFO("took " << took << " s");
    CHECK(took >= 1.0);
    CHECK(took < 1.6);
    CHECK(server_peak(server) == 10);
  }
}

TEST_CASE("crawler: HTTPS with a self-signed certificate fails verification clearly; --insecure crawls", "[crawler][tls]") {
  ringlet::test::Cert cert;
  if (!ringlet::test::make_cert(cert)) RINGLET_SKIP("the openssl command is not installed (scripts/setup.sh installs it)");
  TempDir site;
  site.write("index.html", page({"a.html", "b.html"}));
  site.write("a.html", page({"index.html"}));
  site.write("b.html", page({}));
  auto server = http_server(site.path, {"--tls-cert", cert.cert, "--tls-key", cert.key});
  auto port = start_http_server(server);
  std::string root = "https://127.0.0.1:" + std::to_string(port);
  auto strict = crawl({root + "/"});
  CHECK(strict.status == 0);
  REQUIRE(strict.lines.size() == 1);
  CHECK(field(strict.lines[0], "status") == "null");
  CHECK(field(strict.lines[0], "error").find("certificate verify failed: self-signed certificate") != std::string::npos);
  CHECK(strict.err.find("1 errors (1 tls)") != std::string::npos);
  auto loose = crawl({root + "/", "--insecure"});
  CHECK(paths(loose.lines, root) == std::set<std::string>{"/", "/a.html", "/b.html", "/index.html"});
  auto trusted = crawl({"https://localhost:" + std::to_string(port) + "/", "--ca-file", cert.cert});
  CHECK(trusted.lines.size() == 4);
}

TEST_CASE("crawler: a hostile server's answers are recorded as errors, never a crash", "[crawler]") {
  // The server runs on a thread of its own, with its own scheduler.
  ringlet::Event ready, stop;
  std::uint16_t port = 0;
  std::thread t([&] {
    ringlet::run([&] {
      ringlet::test::RawServer srv([](ringlet::net::TcpStream& c, const ringlet::test::RawRequest& r, int) {
        std::string line = r.line();
        std::string path = line.substr(4, line.find(' ', 4) - 4);
        using ringlet::test::response;
        if (path == "/") {
          c.write_all(response(page({"/bin", "/huge", "/loop", "/trunc", "/garbage", "/gzipbad", "/slow", "/500", "/reset",
                                     "/notes.txt", "http://[::1/bad-url"}),
                               "Content-Type: text/html\r\n"));
        } else if (path == "/bin") {
          std::string b(20000, '\0');
          for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>((i * 97 + 13) & 0xff);
          c.write_all(response(b, "Content-Type: text/html\r\n"));
        } else if (path == "/huge") {
          c.write_all("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 50000000\r\n\r\n<html>");
          ringlet::sleep(3s);
        } else if (path == "/loop") {
          c.write_all("HTTP/1.1 302 Found\r\nLocation: /loop2\r\nContent-Length: 0\r\n\r\n");
        } else if (path == "/loop2") {
          c.write_all("HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n");
        } else if (path == "/trunc") {
          c.write_all("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n<a href=x>");
          return false;
        } else if (path == "/garbage") {
          c.write_all("\x16\x03\x01 this is not HTTP at all\r\n\r\n");
          return false;
        } else if (path == "/gzipbad") {
          c.write_all(response("\x1f\x8b\x09\x01 not really gzip", "Content-Encoding: gzip\r\nContent-Type: text/html\r\n"));
        } else if (path == "/slow") {
          ringlet::sleep(5s);
        } else if (path == "/500") {
          c.write_all(response("try later", "", 503));
        } else if (path == "/reset") {
          return false;  // closed without a word
        } else if (path == "/notes.txt") {
          c.write_all(response("<a href=/not-followed>plain text</a>", "Content-Type: text/plain\r\n"));
        } else {
          c.write_all(response("nothing here", "", 404));
        }
        return true;
      });
      port = srv.port();
      ready.set();
      stop.wait();
    });
  });
  ready.wait();
  std::string root = "http://127.0.0.1:" + std::to_string(port);
  auto c = crawl({root + "/", "--timeout", "0.5", "--retries", "1", "--backoff", "0.05", "--max-size", "1000000",
                  "--concurrency", "20"});
  stop.set();
  t.join();
  INFO(c.err);
  CHECK(c.status == 0);
  std::map<std::string, std::string> line_of;
  for (const auto& l : c.lines) line_of[field(l, "url").substr(root.size())] = l;
  CHECK(line_of.size() == 11);  // "/" and ten links; the invalid URL is not one
  auto error = [&](const std::string& p) { return field(line_of[p], "error"); };
  CHECK(error("/") == "null");
  CHECK(field(line_of["/"], "links") == "10");
  CHECK(field(line_of["/"], "invalid_links") == "1");  // http://[::1/bad-url
  CHECK(c.err.find("1 invalid or not http(s)") != std::string::npos);
  CHECK(error("/bin") == "null");  // binary junk labelled HTML: parsed, nothing found
  CHECK(error("/huge").find("body larger than the limit of 1000000 bytes") != std::string::npos);
  CHECK(error("/loop").find("redirect loop") != std::string::npos);
  CHECK(error("/trunc").find("connection closed before the end of the body") != std::string::npos);
  CHECK(error("/garbage").find("malformed response") != std::string::npos);
  CHECK(error("/gzipbad").find("corrupt gzip body") != std::string::npos);
  CHECK(error("/slow").find("timed out") != std::string::npos);
  CHECK(field(line_of["/slow"], "retries") == "1");
  CHECK(field(line_of["/500"], "status") == "503");
  CHECK(field(line_of["/500"], "retries") == "1");
  CHECK(error("/reset").find("connection") != std::string::npos);
  CHECK(error("/notes.txt") == "null");
  CHECK(field(line_of["/notes.txt"], "links") == "0");  // text/plain is not parsed for links
  CHECK(line_of.count("/not-followed") == 0);
  CHECK(c.err.find("crawled 11 pages") != std::string::npos);
}

TEST_CASE("crawler: an endless chunk line, trailers or header is an error naming it; --max-header sets the limit",
          "[crawler]") {
  ringlet::test::RawServerThread srv(ringlet::test::hostile_response);
  std::string root = srv.url("");
  auto t0 = std::chrono::steady_clock::now();
  auto c = crawl({root + "/chunk-ext", root + "/trailers", root + "/big-header", root + "/many-headers", "--no-robots",
                  "--max-header", "4096", "--timeout", "5"});
  INFO(c.err);
  CHECK(c.status == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  std::map<std::string, std::string> error_of;
  for (const auto& l : c.lines) error_of[field(l, "url").substr(root.size())] = field(l, "error");
  CHECK(error_of.size() == 4);
  CHECK(error_of["/chunk-ext"].find("chunk line too long: over the limit of 4 KiB") != std::string::npos);
  CHECK(error_of["/trailers"].find("trailers too large: with the header, over the limit of 4 KiB") != std::string::npos);
  CHECK(error_of["/big-header"].find("response header larger than the limit of 4 KiB") != std::string::npos);
  CHECK(error_of["/many-headers"].find("response header larger than the limit of 4 KiB") != std::string::npos);
  CHECK(c.err.find("4 errors (4 too-large)") != std::string::npos);
}

TEST_CASE("crawler: Ctrl-C stops it at once, with a summary and a complete output file", "[crawler]") {
  TempDir site;
  std::vector<std::string> hrefs;
  for (int i = 0; i < 50; ++i) {
    hrefs.push_back("p" + std::to_string(i) + ".html");
    site.write("p" + std::to_string(i) + ".html", page({}));
  }
  site.write("index.html", page(hrefs));
  auto server = http_server(site.path, {"--delay", "1000", "--log"});
  auto port = start_http_server(server);
  TempDir out;
  Process p({"crawler", "http://127.0.0.1:" + std::to_string(port) + "/", "--concurrency", "5", "--per-host", "5", "--no-robots",
             "--output", out.path + "/out.jsonl"});
  REQUIRE(server.wait_for_err("GET / 200"));  // the index is served: five pages go out
  std::this_thread::sleep_for(400ms);         // and are in flight for another ~600 ms
  auto t0 = std::chrono::steady_clock::now();
  p.signal(SIGINT);
  int status = p.wait(10000ms);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(p.err());
  CHECK(status == 130);
  CHECK(took < 1s);
  CHECK(p.err().find("interrupted after") != std::string::npos);
  auto lines = read_lines(out.path + "/out.jsonl");
  REQUIRE(lines.size() == 6);
  int interrupted = 0;
  for (const auto& l : lines) {
    CHECK(l.starts_with("{\"url\":"));
    CHECK(l.ends_with("}"));
    if (field(l, "error") == "interrupted") ++interrupted;
  }
  CHECK(interrupted == 5);
}

TEST_CASE("crawler and http_server: --help, bad arguments and bad seeds", "[crawler]") {
  Process help({"crawler", "--help"});
  CHECK(help.wait() == 0);
  CHECK(help.out().find("--per-host") != std::string::npos);
  CHECK(help.out().find("--max-header") != std::string::npos);
  Process server_help({"http_server", "--help"});
  CHECK(server_help.wait() == 0);
  for (const char* flag : {"--max-header", "--max-body", "--max-connections", "--header-timeout", "--body-timeout",
                           "--idle-timeout", "--tls-timeout"}) {
    INFO(flag);
    CHECK(server_help.out().find(flag) != std::string::npos);
  }
  Process none({"crawler"});
  CHECK(none.wait() == 2);
  CHECK(none.err().find("URL is required") != std::string::npos);
  Process bad({"crawler", "http://[oops/"});
  CHECK(bad.wait() == 2);
  CHECK(bad.err().find("skipping seed 'http://[oops/'") != std::string::npos);
  CHECK(bad.err().find("no valid URL") != std::string::npos);
  Process both({"crawler", "x", "--any-host", "--same-host"});
  CHECK(both.wait() == 2);
  Process nodir({"http_server", "/nonexistent/dir"});
  CHECK(nodir.wait() == 2);
}
