// What the libFuzzer targets share: a message fed to a parser in pieces, as the client and
// http_server feed it, with the bound on what the caller keeps checked after every feed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "parse.hpp"

namespace ringlet::fuzz {

// Feeds `wire` to p in pieces of `piece` bytes: keep what it left, append the next piece.
// Traps if a feed takes more than it was given or leaves more than the parser's limit plus
// the piece (detail::max_kept): unbounded growth is a finding even with a short input.
// Returns true if the message ended (done or the end of input reached); Errors propagate.
template <class Parser, class AtEof>
bool feed_in_pieces(Parser& p, std::string_view wire, std::size_t piece, std::size_t max_header, AtEof at_eof) {
  std::string pending;
  std::size_t at = 0;
  while (!p.done()) {
    if (at >= wire.size()) {
      at_eof();
      return true;
    }
    std::size_t n = std::min(piece, wire.size() - at);
    pending.append(wire.substr(at, n));
    at += n;
    std::size_t used = p.feed(pending);
    if (used > pending.size()) __builtin_trap();  // never more than it was given
    pending.erase(0, used);
    if (!p.done() && pending.size() > net::http::detail::max_kept(max_header) + piece) __builtin_trap();
  }
  return true;
}

}  // namespace ringlet::fuzz
