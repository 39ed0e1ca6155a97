#include "links.hpp"

#include <gumbo.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

namespace crawler {

using ringlet::net::http::Url;

namespace {

// Gumbo allocates every node, attribute and string on its own, and frees them all again
// when the tree goes: a tenth of a small page's cost in malloc and free. Its allocator
// hooks take them from this bump arena instead (one per thread: pages are parsed on every
// core); the tree is freed in one go. Vectors that grow leave their old copy behind, which
// at most doubles what the page would have used.
class Arena {
 public:
  static constexpr std::size_t kBlock = 64 * 1024;
  Arena() = default;
  Arena(const Arena&) = delete;
  ~Arena() {
    for (char* b : blocks_) std::free(b);
  }
  void* alloc(std::size_t n) {
    n = (n + 15) & ~std::size_t{15};
    if (n > left_) grow(n);
    void* p = next_;
    next_ += n;
    left_ -= n;
    return p;
  }
  // Forget every allocation; keep the first block for the next page.
  void reset() {
    if (blocks_.empty()) return;
    for (std::size_t i = 1; i < blocks_.size(); ++i) std::free(blocks_[i]);
    blocks_.resize(1);
    next_ = blocks_[0];
    left_ = first_size_;
  }

 private:
  void grow(std::size_t n) {
    std::size_t size = n > kBlock ? n : kBlock;
    char* b = static_cast<char*>(std::malloc(size));
    if (!b) {
      // Gumbo cannot unwind an exception or handle NULL: as with its default malloc hook.
      std::fputs("crawler: out of memory parsing a page\n", stderr);
      std::abort();
    }
    if (blocks_.empty()) first_size_ = size;
    blocks_.push_back(b);
    next_ = b;
    left_ = size;
  }
  std::vector<char*> blocks_;
  char* next_ = nullptr;
  std::size_t left_ = 0;
  std::size_t first_size_ = 0;
};

void* arena_alloc(void* arena, std::size_t n) { return static_cast<Arena*>(arena)->alloc(n); }
void arena_free(void*, void*) {}

}  // namespace

Links extract_links(std::string_view html, const Url& page) {
  Links out;
  thread_local Arena arena;
  GumboOptions options = kGumboDefaultOptions;
  options.allocator = arena_alloc;
  options.deallocator = arena_free;
  options.userdata = &arena;
  options.max_errors = 0;  // parse errors are not looked at: do not record them
  struct Tree {
    GumboOutput* doc;
    Arena& arena;
    ~Tree() { arena.reset(); }  // the whole tree at once (gumbo_destroy_output would only walk it)
  } tree{gumbo_parse_with_options(&options, html.data(), html.size()), arena};
  GumboOutput* doc = tree.doc;
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
  ringlet::net::http::UrlResolver base(base_url ? *base_url : page);
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
