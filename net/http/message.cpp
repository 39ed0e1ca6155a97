// What needs no socket: error names, header fields, the media type. (The fuzz target links
// this and parse.cpp alone.)
#include <algorithm>
#include <cctype>

#include "ringlet/net/http.hpp"
#include "text.hpp"

namespace ringlet::net::http {

using detail::iequals;

const char* to_string(ErrorKind k) noexcept {
  switch (k) {
    case ErrorKind::InvalidUrl: return "invalid-url";
    case ErrorKind::Dns: return "dns";
    case ErrorKind::Connect: return "connect";
    case ErrorKind::Tls: return "tls";
    case ErrorKind::Timeout: return "timeout";
    case ErrorKind::Io: return "io";
    case ErrorKind::Protocol: return "protocol";
    case ErrorKind::TooLarge: return "too-large";
    case ErrorKind::Decode: return "decode";
    case ErrorKind::TooManyRedirects: return "too-many-redirects";
    case ErrorKind::RedirectLoop: return "redirect-loop";
  }
  return "unknown";
}

void Headers::set(std::string_view name, std::string value) {
  remove(name);
  fields_.emplace_back(std::string(name), std::move(value));
}

void Headers::remove(std::string_view name) {
  std::erase_if(fields_, [&](const auto& f) { return iequals(f.first, name); });
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const auto& f : fields_)
    if (iequals(f.first, name)) return std::string_view(f.second);
  return std::nullopt;
}

std::string Response::content_type() const {
  std::string_view v = header("Content-Type");
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace ringlet::net::http
