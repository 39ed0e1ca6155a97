// The link scanner's corpus of tricky HTML: each case is a page (at kPage) and exactly the
// links a browser would follow, in order (examples/crawler/link_scan.hpp says what that is).
// Used by tests/test_links.cpp and bench/crawl/links_bench.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace links_corpus {

struct Case {
  const char* name;
  const char* html;
  std::vector<std::string> links;
  std::size_t invalid = 0;
  bool nofollow = false;
};

inline const char* const kPage = "http://site/dir/page.html";

inline const std::vector<Case> kCorpus = {
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
    {"iframe src followed, its body not; frame src only in a frameset",
     R"(<iframe src=f.html><a href=in.html></iframe><frame src="g.html">)", {"http://site/dir/f.html"}},
    {"frameset", R"(<frameset cols="50%,50%"><frame src=l.html><frameset><frame src='r.html'></frameset></frameset>)",
     {"http://site/dir/l.html", "http://site/dir/r.html"}},
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
    {"named references beyond Latin-1, longest match, two code points",
     R"(<a href="v.html?&rarr;&notin;&it;&NotNestedGreaterGreater;&CounterClockwiseContourIntegral;">)"
     R"(<a href="w.html?&notit;&noti;&not;x">)",
     {"http://site/dir/v.html?%E2%86%92%E2%88%89%E2%81%A2%E2%AA%A2%CC%B8%E2%88%B3",
      "http://site/dir/w.html?&notit;&noti;%C2%ACx"}},
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

inline std::string html_of(const Case& c) {
  if (std::string_view(c.name) == "NUL in a value") return std::string("<a href=\"n\0l.html\">", 19);
  return c.html;
}

}  // namespace links_corpus
