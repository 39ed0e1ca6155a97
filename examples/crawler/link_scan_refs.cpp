// The link scanner's character references in attribute values: numeric ones' replacements,
// and the named ones (the HTML5 list, link_scan_entities.cpp), longest match first.
#include <algorithm>

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

const Entity* find_entity(std::string_view name) {
  const Entity* end = kEntities + kEntityCount;
  const Entity* e = std::lower_bound(kEntities, end, name,
                                     [](const Entity& x, std::string_view n) { return std::string_view(x.name) < n; });
  return e != end && std::string_view(e->name) == name ? e : nullptr;
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
  auto emit = [&](const Entity& e) {
    utf8(value_, e.cp1);
    if (e.cp2) utf8(value_, e.cp2);
  };
  if (run <= kMaxRef && after_run == ';') {
    if (const Entity* e = find_entity(in.substr(i, run))) {
      emit(*e);
      i += run + 1;
      return;
    }
  }
  for (std::size_t len = std::min(run, kMaxLegacy); len > 0; --len) {
    const Entity* e = find_entity(in.substr(i, len));
    if (e && e->legacy) {
      char next = len < run ? in[i + len] : after_run;
      if (next == '=' || alnum(next)) break;  // the attribute rule: left as text
      emit(*e);
      i += len;
      return;
    }
  }
  value_ += '&';  // not a reference: the '&' and what follows stay as written
}

}  // namespace crawler
