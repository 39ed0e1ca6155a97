// The link scanner's tokenizer: the HTML5 tokenizer's states that matter for links.
#include <algorithm>
#include <cstring>

#include "link_scan_internal.hpp"

namespace crawler {

using namespace scan;

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
  std::size_t quote_at = n + 1;  // where the value's closing quote is in `in` (n: not in it)
  char quote_for = 0;
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
        // The closing quote, found once per buffer and quote: a value of many '&' would
        // otherwise search to its end again after each reference.
        if (quote_at < i || quote_at > n || quote_for != quote_) {
          quote_at = find(quote_);
          quote_for = quote_;
        }
        std::size_t q = quote_at;
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
