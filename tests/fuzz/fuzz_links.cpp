// libFuzzer target: the crawler's link scanner (examples/crawler/link_scan.hpp). Built and run
// by scripts/fuzz.sh.
//
// Bytes 0-1: where to split the page (modulo its length + 1). The rest is the page. It is
// scanned whole, in two pieces at that split, and one byte at a time: the same links, the
// same invalid count and nofollow each way, and every link an http(s) URL with no fragment.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "link_scan.hpp"

namespace http = ringlet::net::http;

namespace {

struct Got {
  std::vector<std::string> links;
  std::size_t invalid = 0;
  bool nofollow = false;
  bool operator==(const Got&) const = default;
};

template <class Feed>
Got scan(Feed&& feed) {
  static const http::Url page = http::Url::parse("http://site/dir/page.html?q=1");
  crawler::LinkScanner s(page);
  feed(s);
  Got g;
  s.finish([&](http::Url&& u) { g.links.push_back(u.str()); });
  g.invalid = s.invalid();
  g.nofollow = s.nofollow();
  return g;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  std::size_t split = (data[0] | (std::size_t{data[1]} << 8));
  std::string_view html(reinterpret_cast<const char*>(data) + 2, size - 2);
  split %= html.size() + 1;
  Got whole = scan([&](crawler::LinkScanner& s) { s.feed(html); });
  Got two = scan([&](crawler::LinkScanner& s) {
    s.feed(html.substr(0, split));
    s.feed(html.substr(split));
  });
  Got bytes = scan([&](crawler::LinkScanner& s) {
    for (char c : html) s.feed(std::string_view(&c, 1));
  });
  if (!(two == whole) || !(bytes == whole)) std::abort();
  for (const std::string& u : whole.links)
    if ((u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) || u.find('#') != std::string::npos) std::abort();
  if (whole.nofollow && !whole.links.empty()) std::abort();
  return 0;
}
