// libFuzzer target: http_server's request parser fed arbitrary bytes in arbitrary pieces.
// Built and run by scripts/fuzz.sh.
//
// Byte 0 is the piece size - 1; the rest is what the client sent.
#include "fuzz_feed.hpp"

namespace http = ringlet::net::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  constexpr std::size_t kMaxHeader = 2048, kMaxBody = 4096;
  const std::size_t piece = data[0] + 1u;
  std::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    http::detail::RequestParser p(kMaxHeader, kMaxBody);
    ringlet::fuzz::feed_in_pieces(p, wire, piece, kMaxHeader, [] {});
    if (p.done() && p.head().method.empty()) __builtin_trap();  // a finished request has a method
  } catch (const http::detail::BadRequest& e) {
    if (e.status() != 400 && e.status() != 413 && e.status() != 431) __builtin_trap();
  }
  return 0;
}
