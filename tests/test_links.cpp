// The crawler's link scanner (examples/crawler/link_scan.hpp) against a corpus of tricky HTML
// (links_corpus.hpp): each case is the page and exactly the links a browser would follow, in
// order. Every case is also fed in two pieces at every split point and one byte at a time:
// the same links.
#include "helpers.hpp"

#include <string>
#include <vector>

#include "link_scan.hpp"
#include "links.hpp"
#include "links_corpus.hpp"

namespace http = ringlet::net::http;

using links_corpus::Case;
using links_corpus::html_of;
using links_corpus::kCorpus;
using links_corpus::kPage;

namespace {

struct Got {
  std::vector<std::string> links;
  std::size_t invalid;
  bool nofollow;
  bool operator==(const Got&) const = default;
};

template <class Feed>
Got scan(Feed&& feed) {
  crawler::LinkScanner s(http::Url::parse(kPage));
  feed(s);
  Got g{{}, 0, false};
  s.finish([&](http::Url&& u) { g.links.push_back(u.str()); });
  g.invalid = s.invalid();
  g.nofollow = s.nofollow();
  return g;
}

}  // namespace

TEST_CASE("links: the corpus, exactly the links a browser follows", "[crawler][links]") {
  for (const Case& c : kCorpus) {
    INFO(c.name);
    std::string html = html_of(c);
    Got whole = scan([&](crawler::LinkScanner& s) { s.feed(html); });
    CHECK(whole.links == c.links);
    CHECK(whole.invalid == c.invalid);
    CHECK(whole.nofollow == c.nofollow);
  }
}

TEST_CASE("links: the same links whatever the pieces the page comes in", "[crawler][links]") {
  for (const Case& c : kCorpus) {
    INFO(c.name);
    std::string html = html_of(c);
    Got whole = scan([&](crawler::LinkScanner& s) { s.feed(html); });
    for (std::size_t at = 0; at <= html.size(); ++at) {
      INFO("split at " << at);
      Got two = scan([&](crawler::LinkScanner& s) {
        s.feed(std::string_view(html).substr(0, at));
        s.feed(std::string_view(html).substr(at));
      });
      CHECK(two == whole);
    }
    Got bytes = scan([&](crawler::LinkScanner& s) {
      for (char ch : html) s.feed(std::string_view(&ch, 1));
    });
    CHECK(bytes == whole);
  }
}

TEST_CASE("links: extract_links counts without keeping, and says nofollow", "[crawler][links]") {
  auto page = http::Url::parse(kPage);
  auto kept = crawler::extract_links("<a href=a.html><a href=b.html><a href=a.html>", page);
  CHECK(kept.count == 2);
  CHECK(kept.urls.size() == 2);
  auto counted = crawler::extract_links("<a href=a.html><a href=b.html><a href=a.html>", page, false);
  CHECK(counted.count == 2);
  CHECK(counted.urls.empty());
  auto nofollow = crawler::extract_links("<meta name=robots content=nofollow><a href=a.html>", page);
  CHECK(nofollow.nofollow);
  CHECK(nofollow.count == 0);
}

TEST_CASE("links: a page of many links in 16 KB pieces", "[crawler][links]") {
  std::string page = "<!doctype html><title>x</title>";
  for (int i = 0; i < 20000; ++i) page += "<li><a href=\"p" + std::to_string(i) + ".html\">page</a></li>\n";
  std::size_t n = 0;
  crawler::LinkScanner s(http::Url::parse(kPage));
  for (std::size_t at = 0; at < page.size(); at += 16384) s.feed(std::string_view(page).substr(at, 16384));
  std::string last;
  s.finish([&](http::Url&& u) {
    ++n;
    last = u.str();
  });
  CHECK(n == 20000);
  CHECK(last == "http://site/dir/p19999.html");
}

TEST_CASE("links: refresh_url, the spec's declarative refresh steps", "[crawler][links]") {
  CHECK(crawler::refresh_url("0; url=a.html") == "a.html");
  CHECK(crawler::refresh_url("0;URL = 'b.html'") == "b.html");
  CHECK(crawler::refresh_url("1.5, c.html") == "c.html");
  CHECK(crawler::refresh_url("0 d.html") == "d.html");
  CHECK(crawler::refresh_url("5") == std::nullopt);
  CHECK(crawler::refresh_url("x; url=e.html") == std::nullopt);
  CHECK(crawler::refresh_url(" 0 ; url=\"f.html\" trailing") == "f.html");
}

TEST_CASE("links: linear time on values of many references, and on runs of markup", "[crawler][links]") {
  // Each of these was, or could be, quadratic (a search to the value's end after every '&'
  // took minutes on a 5 MB value, 6.5 s on 1 MB): 2 MB each must take well under the limit,
  // even in a sanitizer build on a loaded machine.
  const std::size_t n = 2 << 20;
  const std::vector<std::string> pages = {
      "<a href=\"" + std::string(n, '&') + "\">",
      "<a href=\"" + [&] {
        std::string s;
        while (s.size() < n) s += "&notit&amp;&#65";
        return s;
      }() + "\">",
      std::string(n, '<'),
      "<!--" + std::string(n, '-') + "x",
      "<script><!--" + [&] {
        std::string s;
        while (s.size() < n) s += "<s</";
        return s;
      }(),
  };
  for (const std::string& page : pages) {
    for (std::size_t piece : {page.size(), std::size_t{65536}}) {  // whole, as the crawler feeds it
      auto t0 = std::chrono::steady_clock::now();
      crawler::LinkScanner s(http::Url::parse(kPage));
      for (std::size_t at = 0; at < page.size(); at += piece) s.feed(std::string_view(page).substr(at, piece));
      s.finish([](http::Url&&) {});
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      INFO(page.substr(0, 40) << "... in pieces of " << piece << ": " << secs << " s");
      CHECK(secs < 5.0);  // here: 0.7 s at most in an -O0 ASan build; the quadratic scan, ~4 x 6.5 s
    }
  }
}
