#include "links.hpp"

#include <gumbo.h>

#include <cctype>
#include <memory>
#include <optional>
#include <unordered_set>

namespace crawler {

using ringlet::net::http::Url;

Links extract_links(std::string_view html, const Url& page) {
  Links out;
  std::unique_ptr<GumboOutput, void (*)(GumboOutput*)> doc(
      gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size()),
      [](GumboOutput* o) { gumbo_destroy_output(&kGumboDefaultOptions, o); });
  if (!doc) return out;
  std::optional<std::string_view> base_href;
  std::vector<std::string_view> hrefs;
  std::vector<const GumboNode*> stack{doc->root};
  while (!stack.empty()) {
    const GumboNode* n = stack.back();
    stack.pop_back();
    if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_TEMPLATE) continue;
    const GumboElement& e = n->v.element;
    if (e.tag == GUMBO_TAG_A || e.tag == GUMBO_TAG_AREA || (e.tag == GUMBO_TAG_BASE && !base_href)) {
      if (const GumboAttribute* href = gumbo_get_attribute(&e.attributes, "href")) {
        if (e.tag == GUMBO_TAG_BASE)
          base_href = href->value;
        else
          hrefs.emplace_back(href->value);
      }
    }
    // Children in reverse, so they come off the stack in document order.
    for (unsigned i = e.children.length; i-- > 0;) stack.push_back(static_cast<const GumboNode*>(e.children.data[i]));
  }
  std::optional<Url> base_url;
  if (base_href) base_url = page.resolve(*base_href);
  const Url& base = base_url ? *base_url : page;
  std::unordered_set<std::string> seen;
  for (std::string_view h : hrefs) {
    auto u = base.resolve(h);
    if (!u) {
      ++out.invalid;
      continue;
    }
    if (seen.insert(u->str()).second) out.urls.push_back(std::move(*u));
  }
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
