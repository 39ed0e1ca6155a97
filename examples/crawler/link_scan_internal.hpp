// The link scanner's parts shared by its files (link_scan.cpp, link_scan_tokenizer.cpp,
// link_scan_refs.cpp): the tokenizer's states, byte classes, character references.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "link_scan.hpp"

namespace crawler {

enum class LinkScanner::State : std::uint8_t {
  Data, TagOpen, EndTagOpen, TagName, BeforeAttrName, AttrName, AfterAttrName, BeforeValue,
  ValueQuoted, ValueUnquoted, AfterValueQuoted, SelfClosing, MarkupDecl, BogusComment,
  CommentStart, CommentStartDash, Comment, CommentEndDash, CommentEnd, CommentEndBang, Cdata,
  RawText, ScriptData, ScriptEscaped, ScriptEscapedDash, ScriptEscapedDashDash, ScriptEscapedLt,
  ScriptDouble, ScriptDoubleDash, ScriptDoubleDashDash, ScriptDoubleLt, Plaintext,
  CharRef, NumStart, HexStart, Dec, Hex
};

namespace scan {

inline constexpr std::size_t kMaxName = 16;  // longer tag or attribute names match nothing we look at
enum Attr { kNone = 0, kHref = 1, kSrc, kXlink, kName, kContent, kEquiv };

inline bool ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
inline bool alpha(char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
inline bool digit(char c) { return c >= '0' && c <= '9'; }
inline bool alnum(char c) { return alpha(c) || digit(c); }
inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; }
inline int hexval(char c) {
  if (digit(c)) return c - '0';
  c = static_cast<char>(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}
inline bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != b[i]) return false;
  return true;
}

// Character references (link_scan_refs.cpp).
void utf8(std::string& out, std::uint32_t cp);
std::uint32_t numeric(std::uint32_t v);                    // the spec's numeric reference end
std::optional<std::uint32_t> legacy(std::string_view name);          // may go without ';'
std::optional<std::uint32_t> with_semicolon(std::string_view name);  // followed by ';'
constexpr std::size_t kMaxRef = 16;  // the longest name known

}  // namespace scan
}  // namespace crawler
