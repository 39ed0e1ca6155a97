// The link scanner's character references in attribute values: numeric ones' replacements,
// and the named ones it knows (link_scan.hpp says which).
#include "link_scan_internal.hpp"

namespace crawler {
namespace scan {

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


}  // namespace scan

using namespace scan;

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

}  // namespace crawler
