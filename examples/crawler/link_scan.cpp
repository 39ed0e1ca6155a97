#include "link_scan.hpp"

#include <algorithm>
#include <cstring>

namespace crawler {

using ringlet::net::http::Url;

enum class LinkScanner::State : std::uint8_t {
  Data, TagOpen, EndTagOpen, TagName, BeforeAttrName, AttrName, AfterAttrName, BeforeValue,
  ValueQuoted, ValueUnquoted, AfterValueQuoted, SelfClosing, MarkupDecl, BogusComment,
  CommentStart, CommentStartDash, Comment, CommentEndDash, CommentEnd, CommentEndBang, Cdata,
  RawText, ScriptData, ScriptEscaped, ScriptEscapedDash, ScriptEscapedDashDash, ScriptEscapedLt,
  ScriptDouble, ScriptDoubleDash, ScriptDoubleDashDash, ScriptDoubleLt, Plaintext,
  CharRef, NumStart, HexStart, Dec, Hex
};

namespace {

constexpr std::size_t kMaxName = 16;  // longer tag or attribute names match nothing we look at
enum Attr { kNone = 0, kHref = 1, kSrc, kXlink, kName, kContent, kEquiv };

bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool alpha(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
bool alnum(char c) { return alpha(c) || digit(c); }
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; }
int hexval(char c) {
  if (digit(c)) return c - '0';
  c = static_cast<char>(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != b[i]) return false;
  return true;
}

void utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// The spec's "numeric character reference end state".
std::uint32_t numeric(std::uint32_t v) {
  static constexpr std::uint16_t c1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                           0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                           0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                           0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0xFFFD;
  if (v >= 0x80 && v <= 0x9F) return c1[v - 0x80];
  return v;
}

// Named references: the 106 that may go without ';' (legacy), then ';'-only ones.
struct Named {
  const char* name;
  std::uint32_t cp;
};
constexpr const char* kLatin1[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",    "copy",   "ordf",
    "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",
    "para",   "middot", "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave",
    "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",
    "Igrave", "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",
    "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",  "agrave", "aacute",
    "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil", "egrave", "eacute", "ecirc",  "euml",   "igrave",
    "iacute", "icirc",  "iuml",   "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};
constexpr Named kLegacyAscii[] = {{"amp", '&'},  {"AMP", '&'}, {"lt", '<'},     {"LT", '<'},    {"gt", '>'},
                                  {"GT", '>'},   {"quot", '"'}, {"QUOT", '"'}, {"COPY", 0xA9}, {"REG", 0xAE}};
constexpr Named kSemicolon[] = {
    {"apos", '\''},        {"Tab", '\t'},        {"NewLine", '\n'},    {"excl", '!'},     {"num", '#'},
    {"dollar", '$'},       {"percnt", '%'},      {"lpar", '('},        {"rpar", ')'},     {"ast", '*'},
    {"midast", '*'},       {"plus", '+'},        {"comma", ','},       {"period", '.'},   {"sol", '/'},
    {"colon", ':'},        {"semi", ';'},        {"equals", '='},      {"quest", '?'},    {"commat", '@'},
    {"lsqb", '['},         {"lbrack", '['},      {"bsol", '\\'},       {"rsqb", ']'},     {"rbrack", ']'},
    {"Hat", '^'},          {"lowbar", '_'},      {"UnderBar", '_'},    {"grave", '`'},    {"DiacriticalGrave", '`'},
    {"lcub", '{'},         {"lbrace", '{'},      {"verbar", '|'},      {"vert", '|'},     {"VerticalLine", '|'},
    {"rcub", '}'},         {"rbrace", '}'},      {"NonBreakingSpace", 0xA0}};
constexpr std::size_t kMaxRef = 16;  // the longest name above

std::optional<std::uint32_t> legacy(std::string_view n) {
  for (const Named& e : kLegacyAscii)
    if (n == e.name) return e.cp;
  for (std::size_t i = 0; i < 96; ++i)
    if (n == kLatin1[i]) return 160 + static_cast<std::uint32_t>(i);
  return std::nullopt;
}
std::optional<std::uint32_t> with_semicolon(std::string_view n) {
  if (auto cp = legacy(n)) return cp;
  for (const Named& e : kSemicolon)
    if (n == e.name) return e.cp;
  return std::nullopt;
}

}  // namespace

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
  // Open addressing on 64-bit hashes of the resolved URLs; 0 marks an empty slot.
  std::size_t cap = 16;
  while (cap < ends_.size() * 2) cap <<= 1;
  std::vector<std::uint64_t> table(cap, 0);
  std::uint32_t from = 0;
  for (std::uint32_t end : ends_) {
    std::string_view h(pending_.data() + from, end - from);
    from = end;
    auto u = resolver.resolve(h);
    if (!u) {
      ++invalid_;
      continue;
    }
    std::uint64_t k = std::hash<std::string_view>{}(u->str());
    if (k == 0) k = 1;
    std::size_t at = k & (cap - 1);
    while (table[at] != 0 && table[at] != k) at = (at + 1) & (cap - 1);
    if (table[at] == k) continue;
    table[at] = k;
    each(std::move(*u));
  }
  pending_.clear();
  pending_.shrink_to_fit();
  ends_.clear();
  ends_.shrink_to_fit();
}

void LinkScanner::add_href(std::string_view h) {
  pending_.append(h);
  ends_.push_back(static_cast<std::uint32_t>(pending_.size()));
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

void LinkScanner::char_ref_end(std::string_view in, std::size_t& i, bool last, bool& need_more) {
  // At in[i], just after '&' of a value being kept. Named references only (numeric ones go
  // through the states).
  std::size_t run = 0;
  while (i + run < in.size() && run < kMaxRef + 1 && alnum(in[i + run])) ++run;
  bool known_end = i + run < in.size() || run == kMaxRef + 1;
  if (!known_end && !last) {
    need_more = true;
    return;
  }
  char after_run = i + run < in.size() ? in[i + run] : '\0';
  if (run <= kMaxRef && after_run == ';') {
    if (auto cp = with_semicolon(in.substr(i, run))) {
      utf8(value_, *cp);
      i += run + 1;
      return;
    }
  }
  for (std::size_t len = std::min(run, std::size_t{6}); len > 0; --len) {
    if (auto cp = legacy(in.substr(i, len))) {
      char next = len < run ? in[i + len] : after_run;
      if (next == '=' || alnum(next)) break;  // the attribute rule: left as text
      utf8(value_, *cp);
      i += len;
      return;
    }
  }
  value_ += '&';  // not a reference: the '&' and what follows stay as written
}

namespace {
// Does `in` at i (a '<') start "<name" (or "</name" with slash) and then a space, '/' or '>'?
// 1 yes, 0 no, -1 not enough bytes to tell.
int tag_at(std::string_view in, std::size_t i, std::string_view name, bool slash, bool last) {
  std::size_t pre = slash ? 2 : 1;
  std::size_t need = pre + name.size() + 1;
  std::size_t have = in.size() - i;
  std::size_t n = std::min(need, have);
  for (std::size_t k = 1; k < n; ++k) {
    char c = in[i + k];
    bool ok = k < pre ? c == '/' : k < need - 1 ? lower(c) == name[k - pre] : ws(c) || c == '/' || c == '>';
    if (!ok) return 0;
  }
  if (have < need) return last ? 0 : -1;
  return 1;
}
}  // namespace

std::size_t LinkScanner::run(std::string_view in, bool last) {
  // A state that needs to see bytes ahead returns i unchanged (its state kept) when they are
  // not there yet: feed() carries them over to the next chunk.
  std::size_t i = 0;
  const std::size_t n = in.size();
  auto find = [&](char ch) -> std::size_t {
    const void* p = std::memchr(in.data() + i, ch, n - i);
    return p ? static_cast<std::size_t>(static_cast<const char*>(p) - in.data()) : n;
  };
  auto begin_end_tag = [&](std::string_view name, std::size_t len) {
    end_tag_ = true;
    name_.assign(name);
    attrs_seen_ = 0;
    i += len;
    state_ = State::BeforeAttrName;
  };
  while (i < n) {
    char c = in[i];
    switch (state_) {
      case State::Data:
        i = find('<');
        if (i == n) return n;
        ++i;
        state_ = State::TagOpen;
        break;
      case State::TagOpen:
        if (c == '!') {
          state_ = State::MarkupDecl;
          ++i;
        } else if (c == '/') {
          state_ = State::EndTagOpen;
          ++i;
        } else if (alpha(c)) {
          end_tag_ = false;
          name_.clear();
          attrs_seen_ = 0;
          state_ = State::TagName;
        } else {
          state_ = c == '?' ? State::BogusComment : State::Data;
        }
        break;
      case State::EndTagOpen:
        if (alpha(c)) {
          end_tag_ = true;
          name_.clear();
          attrs_seen_ = 0;
          state_ = State::TagName;
        } else if (c == '>') {
          state_ = State::Data;
          ++i;
        } else {
          state_ = State::BogusComment;
        }
        break;
      case State::TagName:
        ++i;
        if (ws(c)) state_ = State::BeforeAttrName;
        else if (c == '/') state_ = State::SelfClosing;
        else if (c == '>') emit_tag();
        else if (name_.size() <= kMaxName) name_ += lower(c);
        break;
      case State::BeforeAttrName:
        if (ws(c)) {
          ++i;
        } else if (c == '/' || c == '>') {
          state_ = State::AfterAttrName;
        } else {
          start_attr(c);  // '=' here starts a name, as the spec says
          state_ = State::AttrName;
          ++i;
        }
        break;
      case State::AttrName:
        if (ws(c) || c == '/' || c == '>') {
          state_ = State::AfterAttrName;
        } else if (c == '=') {
          begin_value();
          state_ = State::BeforeValue;
          ++i;
        } else {
          if (attr_name_.size() <= kMaxName) attr_name_ += lower(c);
          ++i;
        }
        break;
      case State::AfterAttrName:
        if (ws(c)) {
          ++i;
        } else if (c == '/') {
          state_ = State::SelfClosing;
          ++i;
        } else if (c == '=') {
          begin_value();
          state_ = State::BeforeValue;
          ++i;
        } else if (c == '>') {
          ++i;
          emit_tag();
        } else {
          start_attr(c);
          state_ = State::AttrName;
          ++i;
        }
        break;
      case State::BeforeValue:
        if (ws(c)) {
          ++i;
        } else if (c == '"' || c == '\'') {
          quote_ = c;
          state_ = State::ValueQuoted;
          ++i;
        } else if (c == '>') {
          ++i;
          emit_tag();
        } else {
          state_ = State::ValueUnquoted;
        }
        break;
      case State::ValueQuoted: {
        std::size_t q = find(quote_);
        if (!attr_) {
          i = q;
        } else {
          const void* amp = std::memchr(in.data() + i, '&', q - i);
          std::size_t stop = amp ? static_cast<std::size_t>(static_cast<const char*>(amp) - in.data()) : q;
          append_value(in.substr(i, stop - i));
          i = stop;
          if (amp) {
            ++i;
            return_ = State::ValueQuoted;
            state_ = State::CharRef;
            break;
          }
        }
        if (q < n) {
          ++i;
          state_ = State::AfterValueQuoted;
        }
        break;
      }
      case State::ValueUnquoted:
        ++i;
        if (ws(c)) {
          state_ = State::BeforeAttrName;
        } else if (c == '>') {
          emit_tag();
        } else if (c == '&' && attr_) {
          return_ = State::ValueUnquoted;
          state_ = State::CharRef;
        } else if (attr_) {
          append_value(std::string_view(&c, 1));
        }
        break;
      case State::AfterValueQuoted:
        if (ws(c)) {
          state_ = State::BeforeAttrName;
          ++i;
        } else if (c == '/') {
          state_ = State::SelfClosing;
          ++i;
        } else if (c == '>') {
          ++i;
          emit_tag();
        } else {
          state_ = State::BeforeAttrName;
        }
        break;
      case State::SelfClosing:
        if (c == '>') {
          ++i;
          self_closing_ = true;
          emit_tag();
        } else {
          state_ = State::BeforeAttrName;
        }
        break;
      case State::CharRef:
        if (c == '#') {
          ++i;
          num_ = 0;
          state_ = State::NumStart;
        } else {
          bool more = false;
          char_ref_end(in, i, last, more);
          if (more) return i;
          state_ = return_;
        }
        break;
      case State::NumStart:
        if (c == 'x' || c == 'X') {
          hex_char_ = c;
          state_ = State::HexStart;
          ++i;
        } else if (digit(c)) {
          state_ = State::Dec;
        } else {
          value_ += "&#";
          state_ = return_;
        }
        break;
      case State::HexStart:
        if (hexval(c) >= 0) {
          state_ = State::Hex;
        } else {
          value_ += "&#";
          value_ += hex_char_;
          state_ = return_;
        }
        break;
      case State::Dec:
      case State::Hex: {
        bool hex = state_ == State::Hex;
        int d = hex ? hexval(c) : digit(c) ? c - '0' : -1;
        if (d >= 0) {
          num_ = std::min<std::uint32_t>(num_ * (hex ? 16 : 10) + static_cast<std::uint32_t>(d), 0x110000);
          ++i;
        } else {
          utf8(value_, numeric(num_));
          if (c == ';') ++i;
          state_ = return_;
        }
        break;
      }
      case State::MarkupDecl: {
        std::string_view rest = in.substr(i);
        auto starts = [&](std::string_view w) {  // 1, 0, or -1: not enough bytes
          std::size_t k = std::min(w.size(), rest.size());
          if (rest.substr(0, k) != w.substr(0, k)) return 0;
          return k == w.size() ? 1 : last ? 0 : -1;
        };
        int dash = starts("--");
        int cdata = foreign_ > 0 ? starts("[CDATA[") : 0;
        if (dash < 0 || cdata < 0) return i;
        if (dash > 0) {
          i += 2;
          state_ = State::CommentStart;
        } else if (cdata > 0) {
          i += 7;
          state_ = State::Cdata;
        } else {
          state_ = State::BogusComment;  // also <!doctype ...>: it ends at the first '>'
        }
        break;
      }
      case State::BogusComment:
        i = find('>');
        if (i < n) {
          ++i;
          state_ = State::Data;
        }
        break;
      case State::CommentStart:
      case State::CommentStartDash:
        if (c == '-') {
          state_ = state_ == State::CommentStart ? State::CommentStartDash : State::CommentEnd;
          ++i;
        } else if (c == '>') {  // <!--> and <!--->
          state_ = State::Data;
          ++i;
        } else {
          state_ = State::Comment;
        }
        break;
      case State::Comment:
        i = find('-');
        if (i < n) {
          ++i;
          state_ = State::CommentEndDash;
        }
        break;
      case State::CommentEndDash:
        if (c == '-') {
          state_ = State::CommentEnd;
          ++i;
        } else {
          state_ = State::Comment;
        }
        break;
      case State::CommentEnd:
        if (c == '>') {
          state_ = State::Data;
        } else if (c == '!') {
          state_ = State::CommentEndBang;
        } else if (c != '-') {
          state_ = State::Comment;
          break;
        }
        ++i;
        break;
      case State::CommentEndBang:
        if (c == '>') {
          state_ = State::Data;
          ++i;
        } else if (c == '-') {
          state_ = State::CommentEndDash;
          ++i;
        } else {
          state_ = State::Comment;
        }
        break;
      case State::Cdata: {
        i = find(']');
        if (i == n) return n;
        if (n - i < 3 && !last) return i;
        if (in.substr(i, 3) == "]]>") {
          i += 3;
          state_ = State::Data;
        } else {
          ++i;
        }
        break;
      }
      case State::RawText:
      case State::ScriptData: {
        i = find('<');
        if (i == n) return n;
        int end = tag_at(in, i, raw_end_, true, last);
        if (end < 0) return i;
        if (end > 0) {
          begin_end_tag(raw_end_, 2 + raw_end_.size());
          break;
        }
        if (state_ == State::ScriptData) {
          std::size_t k = std::min<std::size_t>(4, n - i);
          if (in.substr(i, k) == std::string_view("<!--").substr(0, k)) {
            if (k < 4 && !last) return i;
            if (k == 4) {
              i += 4;
              state_ = State::ScriptEscapedDashDash;
              break;
            }
          }
        }
        ++i;
        break;
      }
      case State::ScriptEscaped:
      case State::ScriptEscapedDash:
      case State::ScriptEscapedDashDash:
        if (c == '<') {
          state_ = State::ScriptEscapedLt;
        } else if (c == '-') {
          state_ = state_ == State::ScriptEscaped ? State::ScriptEscapedDash : State::ScriptEscapedDashDash;
          ++i;
        } else {
          state_ = c == '>' && state_ == State::ScriptEscapedDashDash ? State::ScriptData : State::ScriptEscaped;
          ++i;
        }
        break;
      case State::ScriptEscapedLt: {  // at the '<'
        int end = tag_at(in, i, "script", true, last);
        int start = end == 0 ? tag_at(in, i, "script", false, last) : 0;
        if (end < 0 || start < 0) return i;
        if (end > 0) {
          begin_end_tag("script", 8);
        } else if (start > 0) {
          i += 7;
          state_ = State::ScriptDouble;
        } else {
          ++i;
          state_ = State::ScriptEscaped;
        }
        break;
      }
      case State::ScriptDouble:
      case State::ScriptDoubleDash:
      case State::ScriptDoubleDashDash:
        if (c == '<') {
          state_ = State::ScriptDoubleLt;
        } else if (c == '-') {
          state_ = state_ == State::ScriptDouble ? State::ScriptDoubleDash : State::ScriptDoubleDashDash;
          ++i;
        } else {
          state_ = c == '>' && state_ == State::ScriptDoubleDashDash ? State::ScriptData : State::ScriptDouble;
          ++i;
        }
        break;
      case State::ScriptDoubleLt: {  // at the '<'
        int end = tag_at(in, i, "script", true, last);
        if (end < 0) return i;
        if (end > 0) {
          i += 8;
          state_ = State::ScriptEscaped;
        } else {
          ++i;
          state_ = State::ScriptDouble;
        }
        break;
      }
      case State::Plaintext:
        return n;
    }
  }
  return n;
}

}  // namespace crawler
