// The crawler's link scanner (examples/crawler/link_scan.hpp) against a corpus of tricky HTML:
// each case is the page and exactly the links a browser would follow, in order. Every case is
// also fed in two pieces at every split point and one byte at a time: the same links.
#include "helpers.hpp"

#include <string>
#include <vector>

#include "link_scan.hpp"
#include "links.hpp"

namespace http = ringlet::net::http;

namespace {

struct Case {
  const char* name;
  const char* html;
  std::vector<std::string> links;
  std::size_t invalid = 0;
  bool nofollow = false;
};

const char* const kPage = "http://site/dir/page.html";

const std::vector<Case> kCorpus = {
    {"plain, case-insensitive names, quoting", R"(<A HREF="a.html">a</A><a href='b.html'><a href=c.html><Area hRef=d.html>)",
     {"http://site/dir/a.html", "http://site/dir/b.html", "http://site/dir/c.html", "http://site/dir/d.html"}},
    {"script bodies are not markup",
     R"(<script>document.write('<a href="s1.html">'); if (a<b) x="</scrip"</script><a href=ok.html>)"
     R"(<SCRIPT type=x>"<a href=s2.html>"</SCRIPT ><a href=ok2.html>)",
     {"http://site/dir/ok.html", "http://site/dir/ok2.html"}},
    {"script escaped and double-escaped",
     R"(<script><!-- <script> </script> <a href=x1.html> --></script><a href=y.html>)"
     R"(<script><!--></script><a href=z.html><script><!-- </script><a href=w.html>)",
     {"http://site/dir/y.html", "http://site/dir/z.html", "http://site/dir/w.html"}},
    {"end tag of raw text with attributes",
     R"(<script>x</script foo="<a href=no.html>"><style>a{}</style/><a href=yes.html>)", {"http://site/dir/yes.html"}},
    {"comments, abrupt and bang-closed",
     R"(<!-- <a href=c1.html> --><!--><a href=a1.html><!---><a href=a2.html>)"
     R"(<!-- -- > <a href=c2.html> --!><a href=a3.html><!----><a href=a4.html>)",
     {"http://site/dir/a1.html", "http://site/dir/a2.html", "http://site/dir/a3.html", "http://site/dir/a4.html"}},
    {"bogus comments, doctype, </ junk",
     R"(<!DOCTYPE html PUBLIC "-//W3C//DTD"><? <a href=c3.html> ?><a href=a5.html></ <a href=c4.html>>)"
     R"(<! <a href=c5.html>x><a href=a6.html></3 <a href=c6.html>><a href=a7.html>)",
     {"http://site/dir/a5.html", "http://site/dir/a6.html", "http://site/dir/a7.html"}},
    {"RCDATA and raw text elements",
     R"(<title><a href=t1.html></title><textarea><a href=t2.html></textarea><xmp><a href=t3.html></xmp>)"
     R"(<style><a href=t4.html></style><noembed><a href=t5.html></noembed><noframes><a href=t6.html></noframes>)"
     R"(<a href=ok.html>)",
     {"http://site/dir/ok.html"}},
    {"iframe src followed, its body not", R"(<iframe src=f.html><a href=in.html></iframe><frame src="g.html">)",
     {"http://site/dir/f.html", "http://site/dir/g.html"}},
    {"not pages: img, script, link src/href",
     R"(<img src=i.png><script src=s.js></script><link href=s.css rel=stylesheet><a href=p.html>)",
     {"http://site/dir/p.html"}},
    {"character references in values",
     R"(<a href="q.html?x=1&amp;y=2"><a href=u.html?x=1&amp;z=3><a href="r.html?a=1&copy=2">)"
     R"(<a href='&#x2F;d&#47;e&sol;f.html'><a href="g.html?a&notit=1"><a href="h.html?&#65&#x42;c&#0;">)"
     R"(<a href="k.html?a&#;b"><a href="k2.html?a&#x;b"><a href="k3.html?&bogus;&amp"><a href="m.html?&#x000000000000041;&#128;">)",
     {"http://site/dir/q.html?x=1&y=2", "http://site/dir/u.html?x=1&z=3", "http://site/dir/r.html?a=1&copy=2",
      "http://site/d/e/f.html", "http://site/dir/g.html?a&notit=1", "http://site/dir/h.html?ABc%EF%BF%BD",
      "http://site/dir/k.html?a&", "http://site/dir/k2.html?a&", "http://site/dir/k3.html?&bogus;&", "http://site/dir/m.html?A%E2%82%AC"}},
    {"named references ending a value, legacy ones followed by text",
     R"(<a href="n.html?a=&lt"><a href="o.html?a&nbsp;b"><a href="p.html?q=&quot;&apos;">)",
     {"http://site/dir/n.html?a=%3C", "http://site/dir/o.html?a%C2%A0b", "http://site/dir/p.html?q=%22'"}},
    {"<base> anywhere applies to every link, the first one only",
     R"(<a href=x.html><base target=_top><base href="/b/"><base href="/c/"><a href=y.html>)",
     {"http://site/b/x.html", "http://site/b/y.html"}},
    {"meta refresh", R"(<meta http-equiv="Refresh" content="0; URL='r.html'"><meta http-equiv=refresh content="5">)"
                     R"(<meta http-equiv=refresh content="3,url=s.html"><meta content="1; url=t.html" http-equiv=REFRESH>)",
     {"http://site/dir/r.html", "http://site/dir/s.html", "http://site/dir/t.html"}},
    {"robots nofollow", R"(<a href=x.html><meta name="ROBOTS" content="noindex, NoFollow"><a href=y.html>)", {}, 0, true},
    {"robots none", R"(<meta name=robots content=none><a href=y.html>)", {}, 0, true},
    {"robots index,follow is no nofollow", R"(<meta name=robots content="index, follow"><a href=y.html>)",
     {"http://site/dir/y.html"}},
    {"duplicate attributes: the first wins", R"(<a href=first.html href=second.html><a id=x HREF='up.html' hReF=z>)",
     {"http://site/dir/first.html", "http://site/dir/up.html"}},
    {"tags inside attribute values are text", R"(<div title="<a href=no.html>" data-x='<a href=no2.html>'><a href=yes.html>)",
     {"http://site/dir/yes.html"}},
    {"CDATA: a bogus comment in HTML, a section in svg",
     R"(<![CDATA[<a href=c6.html>]]><a href=after.html><svg><![CDATA[<a href=c7.html>]]>)"
     R"(<a href=svg.html/><a xlink:href=svg2.html></a><style><a href=svg3.html></style></svg><style><a href=no.html></style>)",
     {"http://site/dir/after.html", "http://site/dir/svg.html/", "http://site/dir/svg2.html", "http://site/dir/svg3.html"}},
    {"template contents are inert", R"(<template><a href=t.html><base href=/t/></template><a href=ok.html>)",
     {"http://site/dir/ok.html"}},
    {"noscript followed, plaintext ends markup", R"(<noscript><a href=ns.html></noscript><plaintext><a href=p.html>)",
     {"http://site/dir/ns.html"}},
    {"odd attribute syntax", R"(<a/href=slash.html><a href = "spaced.html" ><a href=sc/><a =x href=eq.html><a href>)",
     {"http://site/dir/slash.html", "http://site/dir/spaced.html", "http://site/dir/sc/", "http://site/dir/eq.html",
      "http://site/dir/page.html"}},
    {"fragments dropped, each once, invalid counted",
     R"~(<a href="#top"><a href="a.html#x"><a href=a.html><a href="mailto:me@x"><a href="javascript:void(0)">)~"
     R"(<a href="http://[bad"><a href=" http://other/ x ">)",
     {"http://site/dir/page.html", "http://site/dir/a.html", "http://other/%20x"}, 3},
    {"EOF inside a tag drops it", R"(<a href=ok.html><a href="cut.html)", {"http://site/dir/ok.html"}},
    {"EOF inside a comment", R"(<a href=ok.html><!-- <a href=c.html>)", {"http://site/dir/ok.html"}},
    {"EOF after an attribute value", R"(<a href=ok.html><a href=cut.html)", {"http://site/dir/ok.html"}},
    {"a < that starts no tag", R"(1 < 2 <3 <a href=ok.html> <=x> < a href=no.html>)", {"http://site/dir/ok.html"}},
    {"NUL in a value", "", {"http://site/dir/n%EF%BF%BDl.html"}},  // the page: html_of()
};

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

std::string html_of(const Case& c) {
  if (std::string_view(c.name) == "NUL in a value") return std::string("<a href=\"n\0l.html\">", 19);
  return c.html;
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
