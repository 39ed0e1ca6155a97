// The parts under the client and the crawler that need no network: the response parser fed
// arbitrary bytes, robots.txt rules, link extraction and the JSON writer.
#include <random>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "json.hpp"
#include "links.hpp"
#include "parse.hpp"
#include "robots.hpp"

namespace http = ringlet::net::http;
using http::detail::ResponseParser;

namespace {

// Feeds `wire` in pieces of the given sizes (cycled), as the client does: keep what the
// parser left, append the next piece. Returns the error kind, or nullopt on success; the
// most bytes kept after a feed in *kept, the error's text in *what.
std::optional<http::ErrorKind> parse_in_pieces(std::string_view wire, const std::vector<std::size_t>& sizes,
                                               http::Response& out, bool head = false,
                                               http::detail::Limits limits = {}, std::size_t* kept = nullptr,
                                               std::string* what = nullptr) {
  if (kept) *kept = 0;
  try {
    ResponseParser p(out, limits, head);
    std::string pending;
    std::size_t at = 0, k = 0;
    while (!p.done()) {
      if (at >= wire.size()) {
        p.feed_eof();
        break;
      }
      std::size_t n = std::min(sizes[k++ % sizes.size()], wire.size() - at);
      pending.append(wire.substr(at, n));
      at += n;
      pending.erase(0, p.feed(pending));
      if (kept) *kept = std::max(*kept, pending.size());
    }
    return std::nullopt;
  } catch (const http::Error& e) {
    if (what) *what = e.what();
    return e.kind();
  }
}

// The same for a request: the status a server answers with (0 if it parsed).
int request_status(std::string_view wire, std::size_t piece, std::size_t max_header, std::size_t max_body,
                   std::size_t* kept = nullptr) {
  if (kept) *kept = 0;
  try {
    http::detail::RequestParser p(max_header, max_body);
    std::string pending;
    for (std::size_t at = 0; !p.done() && at < wire.size(); at += piece) {
      pending.append(wire.substr(at, piece));
      pending.erase(0, p.feed(pending));
      if (kept) *kept = std::max(*kept, pending.size());
    }
    return p.done() ? 0 : -1;
  } catch (const http::detail::BadRequest& e) {
    return e.status();
  }
}

const std::string kChunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

}  // namespace

TEST_CASE("response parser: any split of a message parses the same", "[http][parser]") {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
  for (std::size_t piece : {1u, 2u, 3u, 7u, 16u, 1000u}) {
    http::Response r;
    CHECK_FALSE(parse_in_pieces(wire, {piece}, r));
    CHECK(r.status == 200);
    CHECK(r.body == "Wikipedia in\r\n\r\nchunks.");
    CHECK(r.header("content-type") == "text/plain");
  }
}

TEST_CASE("response parser: HEAD, 204 and 304 have no body; 1xx is skipped", "[http][parser]") {
  http::Response r;
  CHECK_FALSE(parse_in_pieces("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", {64}, r, true));
  CHECK(r.body.empty());
  CHECK_FALSE(parse_in_pieces("HTTP/1.1 304 Not Modified\r\nContent-Length: 500\r\n\r\n", {64}, r));
  CHECK(r.status == 304);
  CHECK_FALSE(parse_in_pieces("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                              {5}, r));
  CHECK(r.status == 200);
  CHECK(r.body == "ok");
  CHECK_FALSE(r.headers.has("Link"));  // the interim response's fields are not the final one's
}

TEST_CASE("response parser: a chunk line over 4 KiB is an error, however it arrives", "[http][parser]") {
  using http::detail::kMaxChunkLine;
  // A line of `len` bytes for a chunk of size `digit`: "5;xxx...", or zeros then the digit.
  auto line = [](std::size_t len, char digit, bool zeros) {
    return zeros ? std::string(len - 1, '0') + digit : std::string(1, digit) + ";" + std::string(len - 2, 'x');
  };
  for (std::size_t len : {kMaxChunkLine, kMaxChunkLine + 1}) {
    for (bool zeros : {false, true}) {
      for (bool last : {false, true}) {
        // The long line is a chunk's of "hello", or the last chunk's.
        std::string wire = kChunkedHead + (last ? "5\r\nhello\r\n" + line(len, '0', zeros) + "\r\n\r\n"
                                                : line(len, '5', zeros) + "\r\nhello\r\n0\r\n\r\n");
        for (std::size_t piece : {1u, 7u, 1000u, 16384u, 100000u}) {
          INFO("line of " << len << " bytes, " << (zeros ? "zeros" : "extensions") << (last ? ", last chunk" : "")
                          << ", pieces of " << piece);
          http::Response r;
          std::string what;
          std::size_t kept = 0;
          auto err = parse_in_pieces(wire, {piece}, r, false, {}, &kept, &what);
          if (len <= kMaxChunkLine) {
            CHECK_FALSE(err);
            CHECK(r.body == "hello");
          } else {
            CHECK(err == http::ErrorKind::TooLarge);
            CHECK(what == "chunk line too long: over the limit of 4 KiB");
          }
          CHECK(kept <= 2 + kMaxChunkLine + 2 + 2 + piece);  // CRLF, line, CRLF, the empty line
        }
      }
    }
  }
}

TEST_CASE("parsers: a chunked body that is only its last chunk, a byte at a time (found by fuzz_chunked)",
          "[http][parser]") {
  // Boost 1.74's basic_parser asserted "n >= 5" going back to a last chunk with 4 bytes.
  for (std::string last : {"0\r\n\r\n", "0\r\nT: x\r\n\r\n", "000;e=1\r\n\r\n"}) {
    INFO(last);
    http::Response r;
    CHECK_FALSE(parse_in_pieces(kChunkedHead + last, {1}, r));
    CHECK(r.body.empty());
    CHECK(request_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + last, 1, 1024, 1024) == 0);
  }
}

TEST_CASE("response parser: head and trailers share max_header, exactly, however they arrive", "[http][parser]") {
  http::detail::Limits limits;
  limits.max_header = 1000;
  // A head of exactly 1000 bytes fits, 1001 does not.
  auto head_of = [](std::size_t len, std::string_view first) {
    std::string h = std::string(first) + "X: ";
    h += std::string(len - h.size() - 4, 'a') + "\r\n\r\n";
    return h;
  };
  for (std::size_t piece : {1u, 13u, 600u, 5000u}) {
    INFO("pieces of " << piece);
    http::Response r;
    std::string what;
    std::size_t kept = 0;
    CHECK_FALSE(parse_in_pieces(head_of(1000, "HTTP/1.1 204 No\r\n"), {piece}, r, false, limits));
    CHECK(parse_in_pieces(head_of(1001, "HTTP/1.1 204 No\r\n"), {piece}, r, false, limits, &kept, &what) ==
          http::ErrorKind::TooLarge);
    CHECK(what == "response header larger than the limit of 1000 bytes");
    CHECK(kept <= 1000 + piece);
    // Interim responses count: 40 of them are 1000 bytes, with nothing left for the real one.
    std::string interim;
    for (int i = 0; i < 40; ++i) interim += "HTTP/1.1 100 Continue\r\n\r\n";
    CHECK(parse_in_pieces(interim + "HTTP/1.1 204 No\r\n\r\n", {piece}, r, false, limits, &kept, &what) ==
          http::ErrorKind::TooLarge);
    CHECK(parse_in_pieces(interim.substr(0, 25 * 20) + "HTTP/1.1 204 No\r\n\r\n", {piece}, r, false, limits) ==
          std::nullopt);
    // Trailers: the head is kChunkedHead.size() bytes; trailers (with their closing empty
    // line) may take the rest of the 1000.
    std::size_t room = 1000 - kChunkedHead.size();
    auto trailers_of = [](std::size_t len) { return "T: " + std::string(len - 7, 't') + "\r\n\r\n"; };
    CHECK_FALSE(parse_in_pieces(kChunkedHead + "3\r\nabc\r\n0\r\n" + trailers_of(room), {piece}, r, false, limits));
    CHECK(r.body == "abc");
    CHECK(r.header("T").size() == room - 7);
    CHECK(parse_in_pieces(kChunkedHead + "3\r\nabc\r\n0\r\n" + trailers_of(room + 1), {piece}, r, false, limits, &kept,
                          &what) == http::ErrorKind::TooLarge);
    CHECK(what == "trailers too large: with the header, over the limit of 1000 bytes");
    CHECK(kept <= 1000 + 3 + piece);
  }
}

TEST_CASE("request parser: the status for each limit, and what is kept stays within it", "[http][parser]") {
  const std::string chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string many = [] {
    std::string s = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 100000; ++i) s += "a:b\r\n";
    return s + "\r\n";
  }();
  struct Case {
    std::string wire;
    int status;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
      {"GET / HTTP/1.1\r\nX: " + std::string(100000, 'a') + "\r\n\r\n", 431},
      {many, 431},
      {chunked + "5;" + std::string(100000, 'e') + "\r\nhello\r\n0\r\n\r\n", 400},
      {chunked + "5\r\nhello\r\n0\r\n" + std::string(100000, 'T') + ": x\r\n\r\n", 431},
      {chunked + "5\r\nhello\r\n0\r\nT: x\r\n\r\n", 0},
      {"POST / HTTP/1.1\r\nContent-Length: 2000\r\n\r\n" + std::string(2000, 'b'), 413},
      {chunked + "7d0\r\n" + std::string(2000, 'b') + "\r\n0\r\n\r\n", 413},
      {"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    for (std::size_t piece : {1u, 100u, 16384u}) {
      if (piece == 1 && cases[i].wire.size() > 20000) continue;  // quadratic in the test only
      INFO("case " << i << ", pieces of " << piece);
      std::size_t kept = 0;
      CHECK(request_status(cases[i].wire, piece, 8192, 1000, &kept) == cases[i].status);
      CHECK(kept <= 8192 + piece);
    }
  }
}

TEST_CASE("response parser: random and mutated input never crashes it", "[http][parser]") {
  // What libFuzzer does at length (scripts/fuzz.sh), in a fixed, quick form that runs under
  // ASan+UBSan with every test run: valid messages mutated byte by byte, and noise.
  const std::string gz = http::detail::compress(std::string(3000, 'a'), 16 + 15);
  const std::vector<std::string> seeds = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: x\r\n\r\n",
      "HTTP/1.0 200 OK\r\n\r\nclose delimited",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(gz.size()) + "\r\n\r\n" + gz,
      "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  };
  std::mt19937 rng(12345);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
  http::detail::Limits limits;
  limits.max_body = 4096;
  limits.max_header = 512;
  int ok = 0, errors = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string wire = seeds[pick(seeds.size())];
    if (iter % 10 == 9) {
      wire.resize(pick(300));
      for (char& c : wire) c = static_cast<char>(pick(256));
    } else {
      for (std::size_t m = pick(4) + 1; m-- > 0 && !wire.empty();) {
        switch (pick(4)) {
          case 0: wire[pick(wire.size())] = static_cast<char>(pick(256)); break;
          case 1: wire.erase(pick(wire.size()), pick(8) + 1); break;
          case 2: wire.insert(pick(wire.size()), std::string(pick(8) + 1, "0\r\n:;9 aF"[pick(9)])); break;
          case 3: wire.resize(pick(wire.size())); break;
        }
      }
    }
    http::Response r;
    std::vector<std::size_t> sizes{pick(64) + 1, pick(7) + 1};
    std::size_t kept = 0;
    if (parse_in_pieces(wire, sizes, r, iter % 17 == 0, limits, &kept))
      ++errors;
    else
      ++ok;
    CHECK(r.body.size() <= limits.max_body + 16384);
    if (kept > http::detail::max_kept(limits.max_header) + 64) FAIL("kept " << kept << " bytes of " << wire);
  }
  // Both outcomes happen: the mutations are neither all harmless nor all fatal.
  CHECK(ok > 1000);
  CHECK(errors > 1000);
}

TEST_CASE("robots.txt: groups, wildcards, longest match, and our user agent", "[crawler]") {
  const char* text =
      "# comment\n"
      "User-agent: *\n"
      "Disallow: /private/\n"
      "Allow: /private/open\n"
      "Disallow: /*.pdf$\n"
      "\n"
      "User-agent: OtherBot\n"
      "User-agent: ringlet-crawler\n"
      "Disallow: /not-for-ringlet\n"
      "Crawl-delay: 5\n";
  auto star = crawler::Robots::parse(text, "SomeBot/1.0");
  CHECK(star.allowed("/"));
  CHECK_FALSE(star.allowed("/private/x.html"));
  CHECK(star.allowed("/private/open/x.html"));  // the longer rule wins
  CHECK_FALSE(star.allowed("/docs/a.pdf"));
  CHECK(star.allowed("/docs/a.pdf?download=1"));  // '$' anchors the end
  CHECK(star.allowed("/not-for-ringlet"));

  auto ours = crawler::Robots::parse(text, "ringlet-crawler/0.1 (+https://example)");
  CHECK_FALSE(ours.allowed("/not-for-ringlet/page"));
  CHECK(ours.allowed("/private/x.html"));  // a specific group replaces "*"
  CHECK(ours.allowed("/robots.txt"));

  CHECK(crawler::robots_match("/a*b", "/axxb/c"));
  CHECK_FALSE(crawler::robots_match("/a*b$", "/axxb/c"));
  CHECK(crawler::robots_match("/a*b$", "/axxbxb"));
  CHECK(crawler::Robots::parse("Disallow: /x\n", "a").allowed("/x"));  // no group: no rule
  CHECK(crawler::Robots::parse("User-agent: *\nDisallow:\n", "a").allowed("/x"));
  CHECK_FALSE(crawler::Robots::disallow_all().allowed("/x"));
}

TEST_CASE("links: <a>/<area> resolved against <base>, fragments dropped, deduplicated", "[crawler]") {
  auto page = http::Url::parse("http://site/dir/page.html");
  auto links = crawler::extract_links(
      "<html><head><base href='/other/'></head><body>"
      "<a href='a.html'>a</a> <a href='a.html#top'>again</a> <A HREF=\"../b.html\">b</A>"
      "<map><area href='http://elsewhere/x'></map><a>no href</a>"
      "<a href='mailto:me@x'>mail</a><a href='javascript:void(0)'>js</a><a href='http://[bad'>bad</a>"
      "<p><a href='  /spaced path.html  '>sp</a></p><table><tr><td><a href=//cdn/y>c</a>",
      page);
  std::vector<std::string> got;
  for (auto& u : links.urls) got.push_back(u.str());
  CHECK(got == std::vector<std::string>{"http://site/other/a.html", "http://site/b.html", "http://elsewhere/x",
                                        "http://site/spaced%20path.html", "http://cdn/y"});
  CHECK(links.invalid == 3);
  // Without a <base>: relative to the page.
  auto plain = crawler::extract_links("<a href=x.html>x</a>", page);
  REQUIRE(plain.urls.size() == 1);
  CHECK(plain.urls[0].str() == "http://site/dir/x.html");
  // Binary junk is still "HTML" to a parser: no crash, whatever it finds.
  std::string junk(5000, '\0');
  for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 131) & 0xff);
  (void)crawler::extract_links(junk, page);
  CHECK(crawler::looks_like_html("text/html", ""));
  CHECK_FALSE(crawler::looks_like_html("image/png", "<html>"));
  CHECK(crawler::looks_like_html("", "  <!DOCTYPE html><p>"));
  CHECK_FALSE(crawler::looks_like_html("", "%PDF-1.4"));
}

TEST_CASE("JSON strings: escapes, and invalid UTF-8 replaced", "[crawler]") {
  std::string out;
  crawler::json_string(out, "a\"b\\c\n\x01 caf\xc3\xa9 \xff\xfe end");
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001 caf\xc3\xa9 \\ufffd\\ufffd end\"");
  out.clear();
  crawler::json_string(out, "\xe2\x82\xac \xed\xa0\x80");  // the euro sign; a lone surrogate
  CHECK(out == "\"\xe2\x82\xac \\ufffd\\ufffd\\ufffd\"");
}
