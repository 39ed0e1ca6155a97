// libFuzzer target: the HTTP response parser (Boost.Beast + our callbacks + zlib) fed
// arbitrary bytes in arbitrary pieces. Built and run by scripts/fuzz.sh.
//
// Byte 0 chooses the mode: bit 0 a HEAD request, bit 1 decompression off, bits 2-7 the
// piece size - 1. The rest is what the server sent.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parse.hpp"

namespace http = ringlet::net::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool head = data[0] & 1;
  http::detail::Limits limits;
  limits.decompress = !(data[0] & 2);
  limits.max_body = 1u << 16;
  limits.max_header = 4096;
  const std::size_t piece = (data[0] >> 2) + 1u;
  std::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::Response r;
  try {
    http::detail::ResponseParser p(r, limits, head);
    std::string pending;
    std::size_t at = 0;
    while (!p.done()) {
      if (at >= wire.size()) {
        p.feed_eof();
        break;
      }
      std::size_t n = std::min(piece, wire.size() - at);
      pending.append(wire.substr(at, n));
      at += n;
      std::size_t used = p.feed(pending);
      if (used > pending.size()) __builtin_trap();  // never more than it was given
      pending.erase(0, used);
    }
    if (p.done() && r.status < 100) __builtin_trap();  // a finished response has a status
  } catch (const http::Error&) {
    // the expected outcome for most inputs
  }
  if (r.body.size() > limits.max_body + 65536) __builtin_trap();  // the limit held
  return 0;
}
