// Link extraction, three ways, on the same pages: the crawler's own streaming scanner
// (examples/crawler/link_scan.hpp), libxml2's HTML SAX push parser (a startElement handler),
// and, when it is installed, gumbo (a full HTML5 tree, walked: the crawler's extractor before
// the scanner). Built only when libxml2 is found; never needed by the build.
//
//   links_bench [--runs N] FILE...   CPU per page (median of N passes over all FILEs, 5 by
//                                    default), MB/s, and the links each found
//   links_bench --corpus             each parser against tests/links_corpus.hpp: the cases
//                                    where its links differ from what a browser follows
//
// All three hand their raw hrefs to the same resolution (first <base href>, normalised,
// fragments dropped, http(s) only, each once), so only the HTML reading differs. The two
// others follow the same elements as the scanner: <a>/<area href>, <iframe>/<frame src>,
// <meta refresh>, <base href>, and the robots meta's nofollow.
#include <libxml/HTMLparser.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#ifdef LINKS_BENCH_GUMBO
#include <gumbo.h>
#endif

#include "link_scan.hpp"
#include "links_corpus.hpp"

namespace http = ringlet::net::http;

namespace {

struct Result {
  std::vector<std::string> links;
  bool nofollow = false;
};

// What the tree and SAX parsers report: elements with their attributes, in document order.
struct Collect {
  std::optional<std::string> base;
  std::vector<std::string> hrefs;
  bool nofollow = false;

  void element(std::string_view name, const std::function<const char*(const char*)>& attr) {
    auto lower_eq = [](std::string_view a, std::string_view b) {
      return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == y;
             });
    };
    if (lower_eq(name, "a") || lower_eq(name, "area")) {
      if (const char* h = attr("href")) hrefs.emplace_back(h);
    } else if (lower_eq(name, "base")) {
      if (const char* h = attr("href"); h && !base) base = h;
    } else if (lower_eq(name, "iframe") || lower_eq(name, "frame")) {
      if (const char* s = attr("src")) hrefs.emplace_back(s);
    } else if (lower_eq(name, "meta")) {
      const char* content = attr("content");
      const char* equiv = attr("http-equiv");
      const char* n = attr("name");
      if (content && equiv && lower_eq(equiv, "refresh")) {
        if (auto u = crawler::refresh_url(content)) hrefs.emplace_back(*u);
      } else if (content && n && lower_eq(n, "robots")) {
        std::string c(content);
        for (char& ch : c) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (c.find("nofollow") != std::string::npos || c.find("none") != std::string::npos) nofollow = true;
      }
    }
  }

  Result finish(const http::Url& page) {
    Result r;
    r.nofollow = nofollow;
    if (nofollow) return r;
    std::optional<http::Url> b;
    if (base) b = page.resolve(*base);
    http::UrlResolver resolver(b ? *b : page);
    std::unordered_set<std::string> seen;
    for (auto& h : hrefs)
      if (auto u = resolver.resolve(h); u && seen.insert(u->str()).second) r.links.push_back(u->str());
    return r;
  }
};

Result ours(std::string_view html, const http::Url& page) {
  crawler::LinkScanner s(page);
  s.feed(html);
  Result r;
  s.finish([&](http::Url&& u) { r.links.push_back(u.str()); });
  r.nofollow = s.nofollow();
  return r;
}

void sax_start(void* ctx, const xmlChar* name, const xmlChar** atts) {
  static_cast<Collect*>(ctx)->element(reinterpret_cast<const char*>(name), [&](const char* want) -> const char* {
    for (const xmlChar** a = atts; a && a[0]; a += 2)
      if (std::strcmp(reinterpret_cast<const char*>(a[0]), want) == 0)
        return a[1] ? reinterpret_cast<const char*>(a[1]) : "";
    return nullptr;
  });
}
void sax_quiet(void*, const char*, ...) {}

Result libxml2(std::string_view html, const http::Url& page) {
  Collect c;
  htmlSAXHandler sax{};
  sax.startElement = sax_start;
  sax.warning = sax_quiet;
  sax.error = sax_quiet;
  htmlParserCtxtPtr ctxt = htmlCreatePushParserCtxt(&sax, &c, nullptr, 0, nullptr, XML_CHAR_ENCODING_UTF8);
  htmlCtxtUseOptions(ctxt, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
  htmlParseChunk(ctxt, html.data(), static_cast<int>(html.size()), 0);
  htmlParseChunk(ctxt, nullptr, 0, 1);
  htmlFreeParserCtxt(ctxt);
  return c.finish(page);
}

#ifdef LINKS_BENCH_GUMBO
Result gumbo(std::string_view html, const http::Url& page) {
  Collect c;
  GumboOutput* doc = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
  std::vector<const GumboNode*> stack{doc->root};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type != GUMBO_NODE_ELEMENT) continue;  // template contents are inert
    const GumboElement& e = n->v.element;
    std::string name = e.tag == GUMBO_TAG_UNKNOWN ? "" : gumbo_normalized_tagname(e.tag);
    c.element(name, [&](const char* want) -> const char* {
      const GumboAttribute* a = gumbo_get_attribute(&e.attributes, want);
      return a ? a->value : nullptr;
    });
    for (unsigned i = e.children.length; i-- > 0;) stack.push_back(static_cast<const GumboNode*>(e.children.data[i]));
  }
  gumbo_destroy_output(&kGumboDefaultOptions, doc);
  return c.finish(page);
}
#endif

struct Parser {
  const char* name;
  Result (*run)(std::string_view, const http::Url&);
};
const Parser kParsers[] = {{"ringlet scanner", ours},
                           {"libxml2 SAX", libxml2},
#ifdef LINKS_BENCH_GUMBO
                           {"gumbo tree", gumbo}
#endif
};

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

int corpus() {
  auto page = http::Url::parse(links_corpus::kPage);
  int wrong_total = 0;
  for (const Parser& p : kParsers) {
    int wrong = 0;
    for (const auto& c : links_corpus::kCorpus) {
      Result r = p.run(links_corpus::html_of(c), page);
      if (r.links == c.links && r.nofollow == c.nofollow) continue;
      ++wrong;
      std::printf("%s: \"%s\"\n  expected:", p.name, c.name);
      for (auto& l : c.links) std::printf(" %s", l.c_str());
      std::printf("\n  got:     ");
      for (auto& l : r.links) std::printf(" %s", l.c_str());
      std::printf("%s\n", r.nofollow ? " (nofollow)" : "");
    }
    std::printf("%s: %d of %zu cases wrong\n\n", p.name, wrong, links_corpus::kCorpus.size());
    if (p.run == ours) wrong_total += wrong;
  }
  return wrong_total == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--corpus") return corpus();
    if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else files.push_back(a);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: links_bench [--runs N] FILE... | links_bench --corpus\n");
    return 2;
  }
  xmlInitParser();
  std::vector<std::string> pages;
  std::size_t bytes = 0;
  for (auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    pages.push_back(ss.str());
    bytes += pages.back().size();
  }
  auto page = http::Url::parse("http://127.0.0.1/index.html");
  std::printf("%zu pages, %.1f KB on average; median of %d passes\n\n", pages.size(),
              static_cast<double>(bytes) / static_cast<double>(pages.size()) / 1024, runs);
  std::printf("| parser | CPU per page (us) | MB/s | links |\n|---|---:|---:|---:|\n");
  for (const Parser& p : kParsers) {
    std::vector<double> t;
    std::size_t links = 0;
    for (int r = 0; r < runs; ++r) {
      links = 0;
      double t0 = cpu_seconds();
      for (auto& h : pages) links += p.run(h, page).links.size();
      t.push_back(cpu_seconds() - t0);
    }
    std::sort(t.begin(), t.end());
    double med = t[t.size() / 2];
    std::printf("| %s | %.1f | %.0f | %zu |\n", p.name, med * 1e6 / static_cast<double>(pages.size()),
                static_cast<double>(bytes) / med / 1e6, links);
  }
  return 0;
}
