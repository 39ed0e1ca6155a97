// Small text helpers shared by the HTTP sources (internal).
#pragma once

#include <algorithm>
#include <cctype>
#include <string_view>

namespace ringlet::net::http::detail {

// ASCII case-insensitive equality: header names and content codings.
inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace ringlet::net::http::detail
