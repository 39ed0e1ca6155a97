// The HTTP message parsers under the client and the example server: Boost.Beast's parser
// (basic_parser) fed from our own buffers, with Content-Encoding undone by zlib. Internal,
// and independent of sockets and fibers, so tests/fuzz can drive it with arbitrary bytes.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <boost/beast/http/basic_parser.hpp>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "ringlet/net/http.hpp"

namespace ringlet::net::http::detail {

// gzip, zlib or raw deflate into a string, with a ceiling on the output.
class Inflater {
 public:
  enum class Format { Gzip, Deflate };
  Inflater(Format f, std::size_t max_out);
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  // Append the decoded bytes of `in` to out. Throws Error{Decode} or Error{TooLarge}.
  void feed(std::string_view in, std::string& out);
  // The body ended: Error{Decode} if the compressed stream was cut short.
  void finish() const;

 private:
  z_stream z_{};
  Format format_;
  std::size_t max_out_;
  bool fed_ = false;      // any input seen
  bool ended_ = false;    // Z_STREAM_END reached
  bool raw_tried_ = false;
};

// `in` compressed in one go: window_bits 16 + 15 for gzip, 15 for zlib ("deflate"), -15 for
// raw deflate. For servers that compress their answers (and for tests).
std::string compress(std::string_view in, int window_bits);

// A chunk line (the size and its extensions, without CRLF) of more than 4 KiB is an error:
// Go's net/http draws the line there too.
inline constexpr std::size_t kMaxChunkLine = 4096;

struct Limits {
  // Every byte before the body: the start line and fields (with any interim 1xx responses
  // before them) and, after a chunked body, the trailers, all together.
  std::size_t max_header = 64u << 10;
  std::size_t max_body = 16u << 20;
  bool decompress = true;
};

// The most a parser leaves its caller to keep after a feed(), before the next read: a head
// of max_header, or a last chunk's line (with the CRLF before and after it) and trailers
// that share max_header with the head. The caller's buffer holds at most this plus a read.
constexpr std::size_t max_kept(std::size_t max_header) noexcept { return 2 + kMaxChunkLine + 2 + max_header; }

// The limit a message went over.
enum class Over { None, Header, ChunkLine, Trailers };

// The accounting under both parsers. Beast's basic_parser takes a line only when it is whole,
// so the bytes of an unfinished line wait in the caller's buffer; this counts them, and the
// lines Beast took, against the limits: the head (start line and fields) and the trailers
// against Limits::max_header together, each chunk line against kMaxChunkLine. The caller
// then keeps at most the limit plus one read.
class HeadBudget {
 public:
  explicit HeadBudget(std::size_t max_header) noexcept : max_header_(max_header) {}
  // What Beast may still take for a header (its header_limit).
  std::size_t header_room() const noexcept { return max_header_ - std::min(used_, max_header_); }
  std::size_t used() const noexcept { return used_; }
  std::size_t max_header() const noexcept { return max_header_; }

  // Around each put(): the bytes offered (a chunk line's digits are found in them), and
  // after it, how many it took and whether the header was done before and is done now.
  void offer(std::string_view data) noexcept { data_ = data; }
  void took(std::size_t n, bool header_was_done, bool header_done) noexcept {
    if (!header_was_done && !header_done) used_ += n;  // the start line and whole fields
  }
  // Beast's on_header: the header ended in the bytes offered (which start at a line). Beast's
  // own header_limit counts from where each put() starts; this counts the whole head.
  Over header_end() noexcept;
  // Beast's on_chunk_header: a chunk line (and after the last one, its trailers) taken whole.
  Over chunk_header(std::uint64_t size, std::string_view ext) const noexcept;
  // After a put() that wants more: `rest`, the bytes it left, which the caller keeps.
  Over kept(std::string_view rest, bool header_done, bool chunked) noexcept;
  // Whether `n` bytes are too few to offer Beast yet. Boost 1.74's basic_parser asserts
  // (parse_chunk_header, "n >= 5") when it goes back to a last chunk whose trailers it waits
  // for with fewer than 5 bytes; no message can end in fewer, so they wait for more.
  bool hold(std::size_t n) const noexcept { return in_trailers_ && n < 5; }

 private:
  std::size_t max_header_;
  std::size_t used_ = 0;  // head bytes so far (interim responses' too)
  std::string_view data_;
  bool in_trailers_ = false;  // the last chunk's line is kept: its trailers are arriving
};

class ResponseParser;
class RequestParser;

// Beast's parser with our callbacks (it calls back into the owner).
class ResponseBeast final : public boost::beast::http::basic_parser<false> {
 public:
  explicit ResponseBeast(ResponseParser& owner) : owner_(owner) {}

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int, error_code&) override {}
  void on_response_impl(int code, string_view reason, int version, error_code& ec) override;
  void on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, string_view ext, error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;
  ResponseParser& owner_;
};

class RequestBeast final : public boost::beast::http::basic_parser<true> {
 public:
  explicit RequestBeast(RequestParser& owner) : owner_(owner) {}

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb, string_view method, string_view target, int version,
                       error_code&) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code&) override;
  void on_header_impl(error_code&) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t size, string_view ext, error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override { return body.size(); }
  void on_finish_impl(error_code&) override {}
  RequestParser& owner_;
};

// Reads one response into `out`. feed() as bytes arrive, feed_eof() if the connection ends.
class ResponseParser {
 public:
  ResponseParser(Response& out, Limits limits, bool head_request);
  ~ResponseParser();
  // Consumes what it can of data; returns how many bytes it took. The caller keeps the rest
  // and offers it again with more appended (a line must arrive whole). Throws Error: the
  // rest may not be more than the limits allow (HeadBudget), so what the caller keeps stays
  // within them plus the last read.
  std::size_t feed(std::string_view data);
  // The connection closed: ends a body delimited by the close; Error{Io} if the response is
  // incomplete.
  void feed_eof();
  bool done() const noexcept;
  bool header_done() const noexcept;
  // May the connection carry another request after this response?
  bool keep_alive() const noexcept;

 private:
  friend class ResponseBeast;
  void restart();
  // Turn a Beast error (or one a callback raised) into an http::Error.
  [[noreturn]] void fail(const boost::beast::error_code& ec);
  void deliver(std::string_view body, boost::beast::error_code& ec);

  Response& out_;
  Limits limits_;
  bool head_;
  HeadBudget budget_;
  Over over_ = Over::None;  // a limit a callback found exceeded
  std::optional<Inflater> inflater_;
  std::exception_ptr raised_;  // an Error thrown inside a callback, rethrown by feed()
  std::optional<ResponseBeast> beast_;
};

// A request head as http_server needs it (the body, if any, is counted and dropped).
struct RequestHead {
  std::string method;
  std::string target;
  int version = 11;
  Headers headers;
  bool keep_alive = true;
};

// What RequestParser throws: the status a server answers with (400, 413 or 431), and why.
class BadRequest : public Error {
 public:
  BadRequest(int status, ErrorKind kind, const std::string& what) : Error(kind, what), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

class RequestParser {
 public:
  explicit RequestParser(std::size_t max_header = 64u << 10, std::size_t max_body = 1u << 20);
  ~RequestParser();
  // As ResponseParser::feed; throws BadRequest.
  std::size_t feed(std::string_view data);
  bool done() const noexcept;         // the whole request, its body too, has been read
  bool header_done() const noexcept;  // its head has been read (the body may follow)
  RequestHead& head() noexcept { return head_; }

 private:
  friend class RequestBeast;
  [[noreturn]] void fail(const boost::beast::error_code& ec);

  RequestHead head_;
  std::size_t max_body_;
  HeadBudget budget_;
  Over over_ = Over::None;
  std::optional<RequestBeast> beast_;
};

}  // namespace ringlet::net::http::detail
