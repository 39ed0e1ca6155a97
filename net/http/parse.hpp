// The HTTP message parsers under the client and the example server: Boost.Beast's parser
// (basic_parser) fed from our own buffers, with Content-Encoding undone by zlib. Internal,
// and independent of sockets and fibers, so tests/fuzz can drive it with arbitrary bytes.
#pragma once

#include <zlib.h>

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

struct Limits {
  std::size_t max_header = 64u << 10;
  std::size_t max_body = 16u << 20;
  bool decompress = true;
};

class ResponseParser;
class RequestParser;
struct RequestHead;

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
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code& ec) override;
  ResponseParser& owner_;
};

class RequestBeast final : public boost::beast::http::basic_parser<true> {
 public:
  explicit RequestBeast(RequestHead& head) : head_(head) {}

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb, string_view method, string_view target, int version,
                       error_code&) override;
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view name, string_view value, error_code&) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override { return body.size(); }
  void on_finish_impl(error_code&) override {}
  RequestHead& head_;
};

// Reads one response into `out`. feed() as bytes arrive, feed_eof() if the connection ends.
class ResponseParser {
 public:
  ResponseParser(Response& out, Limits limits, bool head_request);
  ~ResponseParser();
  // Consumes what it can of data; returns how many bytes it took. The caller keeps the rest
  // and offers it again with more appended (the header must arrive whole). Throws Error.
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

class RequestParser {
 public:
  explicit RequestParser(std::size_t max_header = 16u << 10, std::size_t max_body = 1u << 20);
  ~RequestParser();
  // As ResponseParser::feed; throws Error{Protocol} / Error{TooLarge}.
  std::size_t feed(std::string_view data);
  bool done() const noexcept;  // the whole request, its body too, has been read
  RequestHead& head() noexcept { return head_; }

 private:
  RequestHead head_;
  std::optional<RequestBeast> beast_;
};

}  // namespace ringlet::net::http::detail
