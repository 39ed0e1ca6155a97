// Links of an HTML page, by crawler::LinkScanner (link_scan.hpp: what is followed, and the
// tokenizer rules kept): <a>/<area> href, <iframe> src, <frame> src in a frameset, <meta
// refresh>; resolved against the first <base href> (itself resolved against the page's URL)
// or the page's URL, normalised, fragments dropped, only http(s), each once, in document
// order; none at all if the page says <meta name=robots content=nofollow>.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ringlet/net/http.hpp>

#include "link_scan.hpp"

namespace crawler {

struct Links {
  std::vector<ringlet::net::http::Url> urls;  // empty unless asked for
  std::size_t count = 0;    // links found (urls.size() when they are kept)
  std::size_t invalid = 0;  // hrefs that were malformed or not http(s)
  bool nofollow = false;    // the robots meta said so: no link is followed
};

// keep_urls false: count them only (a page whose links will not be followed need not hold
// a Url per link).
Links extract_links(std::string_view html, const ringlet::net::http::Url& page, bool keep_urls = true);

// Is this body HTML? By its media type, or, without one, by how it starts.
bool looks_like_html(std::string_view content_type, std::string_view body);

}  // namespace crawler
