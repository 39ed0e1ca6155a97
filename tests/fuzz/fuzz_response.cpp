// libFuzzer target: the HTTP response parser (Boost.Beast + our callbacks + zlib) fed
// arbitrary bytes in arbitrary pieces. Built and run by scripts/fuzz.sh.
//
// Byte 0 chooses the mode: bit 0 a HEAD request, bit 1 decompression off, bits 2-7 the
// piece size - 1. The rest is what the server sent.
#include "fuzz_feed.hpp"

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
    ringlet::fuzz::feed_in_pieces(p, wire, piece, limits.max_header, [&] { p.feed_eof(); });
    if (p.done() && r.status < 100) __builtin_trap();  // a finished response has a status
  } catch (const http::Error&) {
    // the expected outcome for most inputs
  }
  if (r.body.size() > limits.max_body + 65536) __builtin_trap();  // the limit held
  return 0;
}
