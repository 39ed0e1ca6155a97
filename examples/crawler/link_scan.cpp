#include "link_scan.hpp"

#include <algorithm>
#include <cstring>

#include "link_scan_internal.hpp"

namespace crawler {

using ringlet::net::http::Url;
using namespace scan;

LinkScanner::LinkScanner(Url page) : page_(std::move(page)), state_(State::Data) {}

void LinkScanner::feed(std::string_view chunk) {
  // A look-ahead is at most a few dozen bytes: finish it on a copy of the carried bytes and
  // the start of the chunk, then go on in the chunk itself.
  while (!carry_.empty() && !chunk.empty()) {
    std::size_t old = carry_.size();
    std::size_t take = std::min<std::size_t>(chunk.size(), 64);
    carry_.append(chunk.substr(0, take));
    std::size_t used = run(carry_, false);
    if (used < old) {  // still short, and the chunk's first bytes are in the carry
      carry_.erase(0, used);
      chunk.remove_prefix(take);
      continue;
    }
    carry_.clear();
    chunk.remove_prefix(used - old);
  }
  if (chunk.empty()) return;
  std::size_t used = run(chunk, false);
  carry_.assign(chunk.substr(used));
}

void LinkScanner::finish(const std::function<void(Url&&)>& each) {
  std::string rest = std::move(carry_);
  carry_.clear();
  run(rest, true);
  // EOF in a tag drops the tag; in a comment or raw text ends it: nothing more to emit.
  if (nofollow_) return;
  std::optional<Url> base_url;
  if (base_) base_url = page_.resolve(*base_);
  ringlet::net::http::UrlResolver resolver(base_url ? *base_url : page_);
  // Each URL once: open addressing on 64-bit hashes of the resolved URLs (0 marks an empty
  // slot), each slot naming the link that put it there. Equal hashes are settled exactly:
  // the same raw href is the same URL; otherwise that link is resolved again and compared.
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t link = 0;
  };
  std::size_t cap = 16;
  while (cap * 2 < ends_.size() * 3) cap <<= 1;  // at most 2/3 full
  std::vector<Slot> table(cap);
  auto raw = [&](std::size_t i) {
    const std::size_t from = i ? ends_[i - 1] : 0;
    return std::string_view(pending_.data() + from, ends_[i] - from);
  };
  for (std::size_t i = 0; i < ends_.size(); ++i) {
    const std::string_view h = raw(i);
    auto u = resolver.resolve(h);
    if (!u) {
      ++invalid_;
      continue;
    }
    std::uint64_t k = std::hash<std::string_view>{}(u->str());
    if (k == 0) k = 1;
    std::size_t at = k & (cap - 1);
    bool seen = false;
    for (; table[at].hash != 0; at = (at + 1) & (cap - 1)) {
      if (table[at].hash != k) continue;
      const std::string_view other = raw(table[at].link);
      if (other == h) {
        seen = true;
        break;
      }
      auto v = resolver.resolve(other);
      if (v && v->str() == u->str()) {
        seen = true;
        break;
      }
    }
    if (seen) continue;
    table[at] = Slot{k, static_cast<std::uint32_t>(i)};
    each(std::move(*u));
  }
  pending_.clear();
  pending_.shrink_to_fit();
  ends_.clear();
  ends_.shrink_to_fit();
}

void LinkScanner::add_href(std::string_view h) {
  pending_.append(h);
  ends_.push_back(pending_.size());
}

void LinkScanner::start_attr(char c) {
  end_attr();
  attr_name_.clear();
  attr_name_ += lower(c);
}

void LinkScanner::end_attr() {
  if (attr_name_.empty()) return;
  int a = kNone;
  if (!end_tag_) {
    const std::string& n = name_;
    bool anchor = n == "a" || n == "area" || n == "base";
    if (anchor && attr_name_ == "href") a = kHref;
    else if (n == "a" && attr_name_ == "xlink:href") a = kXlink;
    else if ((n == "iframe" || n == "frame") && attr_name_ == "src") a = kSrc;
    else if (n == "meta" && attr_name_ == "name") a = kName;
    else if (n == "meta" && attr_name_ == "content") a = kContent;
    else if (n == "meta" && attr_name_ == "http-equiv") a = kEquiv;
  }
  if (a != kNone && !(attrs_seen_ & (1u << a))) {
    attrs_seen_ |= 1u << a;
    std::string* slot[] = {nullptr, &href_, &src_, &xlink_, &name_attr_, &content_, &equiv_};
    *slot[a] = std::move(value_);
  }
  attr_name_.clear();
  value_.clear();
  attr_ = false;
}

void LinkScanner::begin_value() {
  value_.clear();
  attr_ = !end_tag_ && (attr_name_ == "href" || attr_name_ == "src" || attr_name_ == "xlink:href" ||
                        attr_name_ == "name" || attr_name_ == "content" || attr_name_ == "http-equiv");
}

void LinkScanner::append_value(std::string_view s) {
  while (!s.empty()) {  // U+0000 becomes U+FFFD
    std::size_t z = s.find('\0');
    value_.append(s.substr(0, z));
    if (z == std::string_view::npos) break;
    utf8(value_, 0xFFFD);
    s.remove_prefix(z + 1);
  }
}

void LinkScanner::emit_tag() {
  end_attr();
  const std::string& n = name_;
  bool inert = template_ > 0;
  if (end_tag_) {
    if (n == "template" && template_ > 0) --template_;
    else if (n == "frameset" && frameset_ > 0) --frameset_;
    else if ((n == "svg" || n == "math") && foreign_ > 0) --foreign_;
    state_ = State::Data;
  } else {
    state_ = State::Data;
    if (n == "template") ++template_;
    else if (n == "frameset") ++frameset_;
    else if ((n == "svg" || n == "math") && !self_closing_) ++foreign_;
    else if (foreign_ == 0) {
      if (n == "script") state_ = State::ScriptData;
      else if (n == "style" || n == "xmp" || n == "iframe" || n == "noembed" || n == "noframes" ||
               n == "textarea" || n == "title")
        state_ = State::RawText;
      else if (n == "plaintext") state_ = State::Plaintext;
      if (state_ != State::Data) raw_end_ = n;
    }
    if (!inert) {
      auto has = [&](int a) { return (attrs_seen_ & (1u << a)) != 0; };
      if (n == "a" || n == "area") {
        if (has(kHref)) add_href(href_);
        else if (n == "a" && has(kXlink) && foreign_ > 0) add_href(xlink_);
      } else if (n == "base") {
        if (has(kHref) && !base_) base_ = href_;
      } else if (n == "iframe" || (n == "frame" && frameset_ > 0)) {  // <frame> elsewhere is dropped
        if (has(kSrc)) add_href(src_);
      } else if (n == "meta" && has(kContent)) {
        if (has(kEquiv) && iequal(equiv_, "refresh")) {
          if (auto u = refresh_url(content_)) add_href(*u);
        } else if (has(kName) && iequal(name_attr_, "robots")) {
          std::string_view c = content_;
          while (!c.empty()) {
            std::size_t comma = c.find(',');
            std::string_view tok = c.substr(0, comma);
            while (!tok.empty() && ws(tok.front())) tok.remove_prefix(1);
            while (!tok.empty() && ws(tok.back())) tok.remove_suffix(1);
            if (iequal(tok, "nofollow") || iequal(tok, "none")) nofollow_ = true;
            if (comma == std::string_view::npos) break;
            c.remove_prefix(comma + 1);
          }
        }
      }
    }
  }
  name_.clear();
  attrs_seen_ = 0;
  self_closing_ = false;
}

std::optional<std::string_view> refresh_url(std::string_view s) {
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && ws(s[i])) ++i;
  };
  skip_ws();
  std::size_t d = i;
  while (i < s.size() && digit(s[i])) ++i;
  bool digits = i > d;
  while (i < s.size() && (digit(s[i]) || s[i] == '.')) ++i;
  if (!digits && i == d) return std::nullopt;  // no time
  if (i < s.size() && !ws(s[i]) && s[i] != ';' && s[i] != ',') return std::nullopt;
  skip_ws();
  if (i < s.size() && (s[i] == ';' || s[i] == ',')) ++i;
  skip_ws();
  if (i >= s.size()) return std::nullopt;  // a reload of the page itself: no link
  std::string_view url = s.substr(i);
  if (url.size() >= 3 && iequal(url.substr(0, 3), "url")) {
    std::size_t j = 3;
    while (j < url.size() && ws(url[j])) ++j;
    if (j < url.size() && url[j] == '=') {
      ++j;
      while (j < url.size() && ws(url[j])) ++j;
      url = url.substr(j);
    }
  }
  if (!url.empty() && (url[0] == '"' || url[0] == '\'')) {
    char q = url[0];
    url.remove_prefix(1);
    url = url.substr(0, url.find(q));
  }
  return url;
}


}  // namespace crawler
