// http::Url: parsing, resolution and normal form through uriparser (RFC 3986).
#include <uriparser/Uri.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "ringlet/net/http.hpp"

namespace ringlet::net::http {
namespace {

std::string text_of(const UriTextRangeA& r) {
  return r.first ? std::string(r.first, r.afterLast) : std::string();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What browsers do to an href before parsing: strip surrounding whitespace, drop tabs and
// newlines, and percent-encode bytes a URI may not hold (spaces, non-ASCII, quotes, ...).
std::string clean(std::string_view in) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; };
  while (!in.empty() && is_space(in.front())) in.remove_prefix(1);
  while (!in.empty() && is_space(in.back())) in.remove_suffix(1);
  std::string out;
  out.reserve(in.size());
  static const char* hex = "0123456789ABCDEF";
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto c = static_cast<unsigned char>(in[i]);
    if (c == '\t' || c == '\n' || c == '\r') continue;
    bool ok = c > 0x20 && c < 0x7f && c != '"' && c != '<' && c != '>' && c != '\\' && c != '^' &&
              c != '`' && c != '{' && c != '|' && c != '}';
    // A '%' not followed by two hex digits is a literal percent sign.
    if (c == '%' && !(i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
                      std::isxdigit(static_cast<unsigned char>(in[i + 2]))))
      ok = false;
    if (ok) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

struct Parsed {
  UriUriA uri{};
  bool live = false;
  Parsed() = default;
  Parsed(const Parsed&) = delete;
  ~Parsed() {
    if (live) uriFreeUriMembersA(&uri);
  }
  bool parse(const std::string& text, std::string* why) {
    const char* err = nullptr;
    int rc = uriParseSingleUriA(&uri, text.c_str(), &err);
    if (rc != URI_SUCCESS) {
      if (why) {
        if (err && *err)
          *why = "invalid character '" + std::string(1, *err) + "' at position " + std::to_string(err - text.c_str());
        else
          *why = "malformed URL";
      }
      return false;
    }
    live = true;
    return true;
  }
};

}  // namespace

struct UrlAccess {
  static void fill(Url& url, std::string text, std::string scheme, std::string host, std::uint16_t port,
                   std::size_t at) {
    url.text_ = std::move(text);
    url.scheme_ = std::move(scheme);
    url.host_ = std::move(host);
    url.port_ = port;
    url.target_at_ = at;
  }
};

// Take a parsed absolute URI to our normal form.
static std::optional<Url> normal(UriUriA& u, Url& out, std::string* why);

std::optional<Url> Url::try_parse(std::string_view text, std::string* why) {
  if (text.empty()) {
    if (why) *why = "empty URL";
    return std::nullopt;
  }
  std::string s = clean(text);
  Parsed p;
  if (!p.parse(s, why)) return std::nullopt;
  if (!p.uri.scheme.first) {
    if (why) *why = "not an absolute URL (no scheme)";
    return std::nullopt;
  }
  Url out;
  return normal(p.uri, out, why);
}

Url Url::parse(std::string_view text) {
  std::string why;
  auto u = try_parse(text, &why);
  if (!u) throw Error(ErrorKind::InvalidUrl, "invalid URL '" + std::string(text.substr(0, 200)) + "': " + why);
  return std::move(*u);
}

struct UrlResolver::Impl {
  std::string text;  // the base's text: the parsed URI points into it
  Parsed base;
  std::string error;  // why the base would not parse (never, for a Url)
};

UrlResolver::UrlResolver(const Url& base) : impl_(std::make_unique<Impl>()) {
  impl_->text = base.str();
  if (!impl_->base.parse(impl_->text, &impl_->error) && impl_->error.empty()) impl_->error = "malformed base URL";
}

UrlResolver::~UrlResolver() = default;

std::optional<Url> UrlResolver::resolve(std::string_view reference, std::string* why) const {
  if (!impl_->base.live) {
    if (why) *why = impl_->error;
    return std::nullopt;
  }
  std::string s = clean(reference);
  Parsed ref, abs;
  if (!ref.parse(s, why)) return std::nullopt;
  if (uriAddBaseUriExA(&abs.uri, &ref.uri, &impl_->base.uri, URI_RESOLVE_STRICTLY) != URI_SUCCESS) {
    if (why) *why = "cannot resolve against " + impl_->text;
    return std::nullopt;
  }
  abs.live = true;
  Url out;
  return normal(abs.uri, out, why);
}

std::optional<Url> Url::resolve(std::string_view reference, std::string* why) const {
  return UrlResolver(*this).resolve(reference, why);
}

std::string Url::authority() const {
  std::size_t start = scheme_.size() + 3;
  return text_.substr(start, target_at_ - start);
}

static std::optional<Url> normal(UriUriA& u, Url& out, std::string* why) {
  if (uriNormalizeSyntaxA(&u) != URI_SUCCESS) {
    if (why) *why = "cannot normalise";
    return std::nullopt;
  }
  std::string scheme = lower(text_of(u.scheme));
  if (scheme != "http" && scheme != "https") {
    if (why) *why = scheme.empty() ? "no scheme" : "not an http(s) URL (scheme '" + scheme + "')";
    return std::nullopt;
  }
  std::string host = lower(text_of(u.hostText));
  if (host.empty()) {
    if (why) *why = "no host";
    return std::nullopt;
  }
  if (u.hostData.ipFuture.first) {
    if (why) *why = "unsupported IP literal";
    return std::nullopt;
  }
  std::uint16_t def = scheme == "https" ? 443 : 80;
  std::uint16_t port = def;
  std::string port_text = text_of(u.portText);
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || v == 0 || v > 65535) {
      if (why) *why = "invalid port '" + port_text + "'";
      return std::nullopt;
    }
    port = static_cast<std::uint16_t>(v);
  }
  std::string text = scheme + "://";
  if (u.hostData.ip6)
    text += "[" + host + "]";
  else
    text += host;
  if (port != def) text += ":" + std::to_string(port);
  std::size_t at = text.size();
  if (!u.pathHead) {
    text += "/";
  } else {
    for (auto* seg = u.pathHead; seg; seg = seg->next) {
      text += "/";
      text += text_of(seg->text);
    }
  }
  if (u.query.first) {
    text += "?";
    text += text_of(u.query);
  }
  UrlAccess::fill(out, std::move(text), std::move(scheme), std::move(host), port, at);
  return out;
}

}  // namespace ringlet::net::http
