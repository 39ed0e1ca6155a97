// A streaming link scanner: the links of an HTML page as a browser would follow them, found
// by the HTML5 tokenizer's rules alone (no tree), fed the body in pieces as it arrives.
//
// What it follows ("what a browser would follow" — pages a user reaches by clicking, or that
// the browser loads as a page on its own):
//   - <a href>, <area href>; inside <svg>, <a xlink:href> when the <a> has no href;
//   - <iframe src>, and <frame src> inside a <frameset> (a tree builder drops it elsewhere):
//     documents the browser loads and shows as pages;
//   - <meta http-equiv=refresh content="N; url=...">, whatever the delay N.
// What it does not: <img>/<script>/<link>/<video>... src or href (sub-resources, not pages),
// <form action> (needs a submission), anything inside a <template> (inert: not in the
// document), text that looks like a tag inside <script>, <style>, <textarea>, <title>,
// <xmp>, <iframe>, <noembed>, <noframes> bodies, comments (<!-- -->, <!-->, <!--->, bogus
// comments <!x>, <?x>, </ junk>), doctypes, or CDATA sections. <noscript> content is
// followed: the crawler runs no scripts, and a browser without them shows it.
// Resolution: against the first <base href> of the document wherever it appears (as a
// browser: a link before the <base> is resolved against it too), itself resolved against the
// page's URL; then normalised, fragments dropped, only http(s), each URL once, in document
// order; what cannot be resolved or is not http(s) is counted as invalid.
// Robots: <meta name=robots content="nofollow"> (or "none"), anywhere in the page, means no
// link of the page is followed (nofollow() is true and finish() emits nothing). Metas named
// for one crawler (name=googlebot) are not read; nor is rel=nofollow on a single link, which a
// browser follows and search engines take as a ranking hint.
//
// Tokenizer rules kept: tag and attribute names case-insensitive; the first of duplicate
// attributes wins; values double-quoted, single-quoted or unquoted; character references in
// values (numeric, decimal and hex, with or without ';', with the spec's replacements for
// 0, surrogates, > U+10FFFF and the C1 Windows-1252 range; named: all 2 125 names of the
// HTML5 list, longest match first, the 106 legacy ones also without ';' but then, by the
// attribute rule, left as text when followed by '=' or an alphanumeric); U+0000 in a value
// becomes U+FFFD; script
// data's escaped and double-escaped states (<!-- <script> ... </script> --> inside a script);
// "<![CDATA[" is a section only inside <svg>/<math> (a nesting count, not a tree), a bogus
// comment elsewhere; EOF anywhere ends what was open (a tag cut off at EOF is dropped, as the
// spec does).
// Not modelled, as they need a tree: tags that a tree builder would ignore or move (e.g. a
// second <html>, an element breaking out of <svg>) still count. Nor is the page's encoding:
// bytes are taken as they are (UTF-8 or any ASCII-compatible charset), so an invalid UTF-8
// byte in an href is percent-encoded as that byte, where a browser decoding the page as UTF-8
// would put U+FFFD (differential runs against gumbo agree once bytes are ASCII).
//
// Memory: the tokenizer keeps only the tag being read. The raw hrefs wait until finish() (a
// <base> or a robots meta later in the page changes all of them), in one buffer no larger than
// the page; finish() resolves them one at a time and deduplicates by a 64-bit hash of each
// resolved URL (24 to 48 bytes per link), equal hashes settled exactly (the same raw href,
// or the earlier link resolved again and compared).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <ringlet/net/http.hpp>

namespace crawler {

class LinkScanner {
 public:
  explicit LinkScanner(ringlet::net::http::Url page);

  // The next bytes of the page, in order; any split works, down to one byte at a time.
  void feed(std::string_view chunk);
  // The end of the page: each link, resolved, once, in document order, to `each`.
  void finish(const std::function<void(ringlet::net::http::Url&&)>& each);

  std::size_t invalid() const noexcept { return invalid_; }  // hrefs malformed or not http(s)
  bool nofollow() const noexcept { return nofollow_; }

 private:
  enum class State : std::uint8_t;
  std::size_t run(std::string_view in, bool last);  // bytes consumed; stops where it needs more
  void start_attr(char c);
  void begin_value();
  void append_value(std::string_view s);
  void end_attr();
  void emit_tag();
  void add_href(std::string_view h);
  void char_ref_end(std::string_view in, std::size_t& i, bool last, bool& need_more);

  ringlet::net::http::Url page_;
  State state_;
  std::string carry_;  // the few bytes a look-ahead was short of

  // The tag being read.
  std::string name_;  // lower case, at most kMaxName bytes kept
  bool end_tag_ = false;
  bool self_closing_ = false;
  bool attr_ = false;      // is the value being read one we keep?
  unsigned attrs_seen_ = 0;  // bit per attribute of interest: the first wins
  std::string attr_name_;
  std::string value_;
  std::string href_, src_, xlink_, name_attr_, content_, equiv_;
  char quote_ = 0;
  State return_ = {};  // where a character reference returns to
  std::uint32_t num_ = 0;  // a numeric reference's value so far (saturated)
  char hex_char_ = 'x';

  // Raw text: the name that ends it.
  std::string raw_end_;
  int foreign_ = 0;   // <svg>/<math> depth
  int template_ = 0;  // <template> depth
  int frameset_ = 0;  // <frameset> depth

  std::optional<std::string> base_;
  std::string pending_;                  // raw hrefs, one after another
  std::vector<std::size_t> ends_;        // where each ends in pending_
  std::size_t invalid_ = 0;
  bool nofollow_ = false;
};

// Is the refresh content "N; url=X" (the spec's shared declarative refresh steps)? X, if so.
std::optional<std::string_view> refresh_url(std::string_view content);

}  // namespace crawler
