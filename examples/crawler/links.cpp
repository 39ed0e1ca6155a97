#include "links.hpp"

#include <cctype>

namespace crawler {

using ringlet::net::http::Url;

Links extract_links(std::string_view html, const Url& page, bool keep_urls) {
  Links out;
  LinkScanner scan(page);
  scan.feed(html);
  scan.finish([&](Url&& u) {
    ++out.count;
    if (keep_urls) out.urls.push_back(std::move(u));
  });
  out.invalid = scan.invalid();
  out.nofollow = scan.nofollow();
  return out;
}

bool looks_like_html(std::string_view type, std::string_view body) {
  if (!type.empty()) return type == "text/html" || type == "application/xhtml+xml";
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.front()))) body.remove_prefix(1);
  auto starts = [&](std::string_view p) {
    if (body.size() < p.size()) return false;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(body[i])) != p[i]) return false;
    return true;
  };
  return starts("<!doctype html") || starts("<html") || starts("<head") || starts("<body");
}

}  // namespace crawler
