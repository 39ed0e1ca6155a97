// Links of an HTML page, by gumbo (a complete HTML5 parser): <a href> and <area href>,
// resolved against the first <base href> (itself resolved against the page's URL) or the
// page's URL, normalised, fragments dropped, only http(s), each once, in document order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ringlet/net/http.hpp>

namespace crawler {

struct Links {
  std::vector<ringlet::net::http::Url> urls;
  std::size_t invalid = 0;  // hrefs that were malformed or not http(s)
};

Links extract_links(std::string_view html, const ringlet::net::http::Url& page);

// Is this body HTML? By its media type, or, without one, by how it starts.
bool looks_like_html(std::string_view content_type, std::string_view body);

}  // namespace crawler
