// libFuzzer target: the chunked decoder (chunk lines, extensions, the last chunk, trailers)
// on both sides, behind a fixed chunked head so that every input reaches it. Built and run
// by scripts/fuzz.sh.
//
// Byte 0: bit 0 the request side, bits 1-7 the piece size - 1. The rest is the body as sent.
// A response that ends well must have decoded exactly what a plain reading of the chunk
// sizes says.
#include "fuzz_feed.hpp"

#include <cctype>
#include <optional>

namespace http = ringlet::net::http;

namespace {

// The body as the chunk sizes give it, read plainly (no extensions' syntax checked): for a
// comparison when the parser succeeds. nullopt if the framing cannot be read this way.
std::optional<std::string> plain_decode(std::string_view s) {
  std::string out;
  for (;;) {
    std::size_t eol = s.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    std::uint64_t size = 0;
    std::size_t i = 0;
    for (; i < eol && std::isxdigit(static_cast<unsigned char>(s[i])); ++i) {
      if (size >> 60) return std::nullopt;
      size = size * 16 + static_cast<std::uint64_t>(std::isdigit(static_cast<unsigned char>(s[i])) ? s[i] - '0'
                                                                                                    : (s[i] | 0x20) - 'a' + 10);
    }
    if (i == 0) return std::nullopt;
    s.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (s.size() < size + 2) return std::nullopt;
    out.append(s.substr(0, size));
    s.remove_prefix(size + 2);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool request = data[0] & 1;
  const std::size_t piece = (data[0] >> 1) + 1u;
  std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  constexpr std::size_t kMaxHeader = 1024, kMaxBody = 1u << 16;
  if (request) {
    std::string wire = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(body);
    try {
      http::detail::RequestParser p(kMaxHeader, kMaxBody);
      ringlet::fuzz::feed_in_pieces(p, wire, piece, kMaxHeader, [] {});
    } catch (const http::detail::BadRequest& e) {
      if (e.status() != 400 && e.status() != 413 && e.status() != 431) __builtin_trap();
    }
    return 0;
  }
  std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(body);
  http::detail::Limits limits;
  limits.max_header = kMaxHeader;
  limits.max_body = kMaxBody;
  limits.decompress = false;
  http::Response r;
  try {
    http::detail::ResponseParser p(r, limits, false);
    ringlet::fuzz::feed_in_pieces(p, wire, piece, limits.max_header, [&] { p.feed_eof(); });
    if (p.done()) {
      auto expected = plain_decode(body);
      if (expected && *expected != r.body) __builtin_trap();  // decoded otherwise than the sizes say
    }
  } catch (const http::Error&) {
  }
  if (r.body.size() > limits.max_body) __builtin_trap();
  return 0;
}
