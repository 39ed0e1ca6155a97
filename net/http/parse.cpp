// Response and request parsing on Boost.Beast's basic_parser; bodies decoded with zlib.
#include "parse.hpp"

#include "text.hpp"

#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cctype>

namespace ringlet::net::http::detail {

namespace bhttp = boost::beast::http;

namespace {
std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
std::string size_text(std::size_t n) {
  if (n >= (1u << 20) && n % (1u << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}
// The error a callback sets to stop Beast; the real error waits in raised_ or over_.
boost::beast::error_code stop_code() {
  return boost::system::errc::make_error_code(boost::system::errc::operation_canceled);
}

// One put() of Beast's with the budget kept up to date: the header may take what is left of
// its limit (after interim responses and the fields already taken), and the budget learns
// what was offered (for the callbacks) and what was taken.
template <class Beast>
std::size_t put(Beast& beast, HeadBudget& budget, std::string_view data, boost::beast::error_code& ec) {
  if (budget.hold(data.size())) {
    ec = bhttp::error::need_more;
    return 0;
  }
  bool header_was_done = beast.is_header_done();
  if (!header_was_done) beast.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(budget.header_room(), UINT32_MAX)));
  budget.offer(data);
  std::size_t n = beast.put(boost::asio::const_buffer(data.data(), data.size()), ec);
  budget.took(n, header_was_done, beast.is_header_done());
  return n;
}

// "chunk line too long: ...", for either side; `head` is "response header" or "request header".
std::string over_text(Over o, const char* head, std::size_t max_header) {
  switch (o) {
    case Over::ChunkLine: return "chunk line too long: over the limit of " + size_text(kMaxChunkLine);
    case Over::Trailers: return "trailers too large: with the header, over the limit of " + size_text(max_header);
    default: return std::string(head) + " larger than the limit of " + size_text(max_header);
  }
}
}  // namespace

// ---- HeadBudget ------------------------------------------------------------------------

Over HeadBudget::header_end() noexcept {
  // Beast took the start line and whole fields as they came, so the bytes offered begin at
  // a line: the header ends at the first empty line among them.
  std::size_t end = data_.find("\r\n\r\n");
  if (data_.starts_with("\r\n"))
    end = 2;
  else if (end != std::string_view::npos)
    end += 4;
  used_ += std::min(end, data_.size());
  return used_ > max_header_ ? Over::Header : Over::None;
}

Over HeadBudget::chunk_header(std::uint64_t size, std::string_view ext) const noexcept {
  const char* first = data_.data();
  const char* last = first + data_.size();
  const char* end = ext.data() + ext.size();
  if (ext.data() < first || end > last) return Over::None;  // not among the bytes offered: cannot be
  // The size's digits stand right before the extensions; a CRLF or the start before them.
  const char* begin = ext.data();
  while (begin > first && std::isxdigit(static_cast<unsigned char>(begin[-1]))) --begin;
  if (static_cast<std::size_t>(end - begin) > kMaxChunkLine) return Over::ChunkLine;
  if (size != 0) return Over::None;
  // The last chunk: Beast has its trailers whole. They count from after the line's CRLF to
  // the end of the empty line that closes them.
  std::string_view after(end, static_cast<std::size_t>(last - end));
  std::size_t eom = after.find("\r\n\r\n");
  std::size_t trailers = eom == std::string_view::npos ? after.size() : eom + 2;
  return used_ + trailers > max_header_ ? Over::Trailers : Over::None;
}

Over HeadBudget::kept(std::string_view rest, bool header_done, bool chunked) noexcept {
  in_trailers_ = false;
  if (!header_done) return rest.size() > header_room() ? Over::Header : Over::None;
  if (!chunked) return Over::None;  // a body is taken as it comes: nothing is kept back
  if (rest.starts_with("\r\n")) rest.remove_prefix(2);  // what ended the chunk before
  std::size_t eol = rest.find("\r\n");
  if (eol == std::string_view::npos) {  // a chunk line, unfinished (its CR may be here)
    std::size_t line = rest.size() - (rest.ends_with('\r') ? 1 : 0);
    return line > kMaxChunkLine ? Over::ChunkLine : Over::None;
  }
  if (eol > kMaxChunkLine) return Over::ChunkLine;
  // A whole line kept back is the last chunk's (Beast takes any other at once): the
  // trailers after it are arriving.
  in_trailers_ = true;
  return used_ + (rest.size() - eol - 2) > max_header_ ? Over::Trailers : Over::None;
}

// ---- Inflater --------------------------------------------------------------------------

Inflater::Inflater(Format f, std::size_t max_out) : format_(f), max_out_(max_out) {
  // 32 + 15: zlib or gzip, whichever header is there.
  if (inflateInit2(&z_, 32 + MAX_WBITS) != Z_OK) throw Error(ErrorKind::Decode, "zlib: out of memory");
}

Inflater::~Inflater() { inflateEnd(&z_); }

void Inflater::feed(std::string_view in, std::string& out) {
  if (in.empty()) return;
  bool first = !fed_;
  fed_ = true;
  z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z_.avail_in = static_cast<uInt>(in.size());
  while (z_.avail_in > 0) {
    if (ended_) {
      // Another gzip member follows (concatenated gzip); anything else after the end is
      // ignored, as browsers do.
      if (z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) {
        inflateReset(&z_);
        ended_ = false;
      } else {
        return;
      }
    }
    std::size_t old = out.size();
    std::size_t room = std::max<std::size_t>(16384, std::min<std::size_t>(z_.avail_in * 4, 1u << 20));
    out.resize(old + room);
    z_.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z_.avail_out = static_cast<uInt>(room);
    int rc = inflate(&z_, Z_NO_FLUSH);
    out.resize(old + (room - z_.avail_out));
    if (rc == Z_DATA_ERROR && format_ == Format::Deflate && first && !raw_tried_ && z_.total_out == 0) {
      // "deflate" sent as a raw deflate stream, without the zlib header it should have.
      raw_tried_ = true;
      inflateReset2(&z_, -MAX_WBITS);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z_.avail_in = static_cast<uInt>(in.size());
      continue;
    }
    if (rc == Z_STREAM_END) {
      ended_ = true;
    } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw Error(ErrorKind::Decode, std::string(format_ == Format::Gzip ? "corrupt gzip body" : "corrupt deflate body") +
                                         (z_.msg ? std::string(": ") + z_.msg : std::string()));
    }
    if (out.size() > max_out_)
      throw Error(ErrorKind::TooLarge, "decoded body larger than the limit of " + size_text(max_out_));
    if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;  // no progress possible: needs more input
  }
}

void Inflater::finish() const {
  if (fed_ && !ended_)
    throw Error(ErrorKind::Decode, format_ == Format::Gzip ? "gzip body cut short" : "deflate body cut short");
}

std::string compress(std::string_view in, int window_bits) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw Error(ErrorKind::Decode, "zlib: cannot start compressing");
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// ---- ResponseParser --------------------------------------------------------------------

void ResponseBeast::on_response_impl(int code, string_view reason, int version, error_code& ec) {
  if (code < 100) {  // Beast takes any three digits; RFC 9110 status codes start at 100
    owner_.raised_ = std::make_exception_ptr(
        Error(ErrorKind::Protocol, "malformed response: status code " + std::to_string(code) + " out of range"));
    ec = stop_code();
    return;
  }
  owner_.out_.status = code;
  owner_.out_.reason.assign(reason.data(), reason.size());
  owner_.out_.version = version;
}

void ResponseBeast::on_field_impl(bhttp::field, string_view name, string_view value, error_code&) {
  owner_.out_.headers.add(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
}

void ResponseBeast::on_header_impl(error_code& ec) {
  auto& o = owner_;
  if ((o.over_ = o.budget_.header_end()) != Over::None) {
    ec = stop_code();
    return;
  }
  if (!o.limits_.decompress) return;
  auto enc = o.out_.headers.get("Content-Encoding");
  if (!enc) return;
  std::string_view e = trim(*enc);
  if (iequals(e, "gzip") || iequals(e, "x-gzip"))
    o.inflater_.emplace(Inflater::Format::Gzip, o.limits_.max_body);
  else if (iequals(e, "deflate"))
    o.inflater_.emplace(Inflater::Format::Deflate, o.limits_.max_body);
  // identity, or an encoding we did not ask for: the body is kept as sent.
}

void ResponseBeast::on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) {
  if (length && !owner_.inflater_) owner_.out_.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, 1u << 20)));
}

std::size_t ResponseBeast::on_body_impl(string_view body, error_code& ec) {
  owner_.deliver({body.data(), body.size()}, ec);
  return body.size();
}

void ResponseBeast::on_chunk_header_impl(std::uint64_t size, string_view ext, error_code& ec) {
  owner_.over_ = owner_.budget_.chunk_header(size, {ext.data(), ext.size()});
  if (owner_.over_ != Over::None) ec = stop_code();
}

std::size_t ResponseBeast::on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) {
  owner_.deliver({body.data(), body.size()}, ec);
  return body.size();
}

void ResponseBeast::on_finish_impl(error_code& ec) {
  if (owner_.inflater_) {
    try {
      owner_.inflater_->finish();
    } catch (...) {
      owner_.raised_ = std::current_exception();
      ec = stop_code();
    }
  }
}

void ResponseParser::deliver(std::string_view body, boost::beast::error_code& ec) {
  out_.wire_bytes += body.size();
  try {
    if (inflater_) {
      inflater_->feed(body, out_.body);
    } else {
      out_.body.append(body.data(), body.size());
    }
  } catch (...) {
    raised_ = std::current_exception();
    ec = stop_code();
  }
}

ResponseParser::ResponseParser(Response& out, Limits limits, bool head_request)
    : out_(out), limits_(limits), head_(head_request), budget_(limits.max_header) {
  restart();
}

ResponseParser::~ResponseParser() = default;

void ResponseParser::restart() {
  out_.status = 0;
  out_.reason.clear();
  out_.headers.clear();
  out_.body.clear();
  out_.wire_bytes = 0;
  inflater_.reset();
  beast_.emplace(*this);
  beast_->eager(true);
  beast_->skip(head_);
  beast_->body_limit(static_cast<std::uint64_t>(limits_.max_body));
}

void ResponseParser::fail(const boost::beast::error_code& ec) {
  if (raised_) std::rethrow_exception(std::exchange(raised_, nullptr));
  if (ec == bhttp::error::header_limit) over_ = Over::Header;
  if (over_ != Over::None) throw Error(ErrorKind::TooLarge, over_text(over_, "response header", limits_.max_header));
  if (ec == bhttp::error::body_limit)
    throw Error(ErrorKind::TooLarge, "body larger than the limit of " + size_text(limits_.max_body));
  if (ec == bhttp::error::partial_message)
    throw Error(ErrorKind::Io, header_done() ? "connection closed before the end of the body"
                                             : "connection closed before a complete response header");
  throw Error(ErrorKind::Protocol, "malformed response: " + ec.message());
}

std::size_t ResponseParser::feed(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() && !done()) {
    boost::beast::error_code ec;
    std::size_t n = put(*beast_, budget_, data.substr(used), ec);
    used += n;
    if (ec == bhttp::error::need_more) break;
    if (ec) fail(ec);
    // An interim 1xx response (100 Continue, 103 Early Hints): the real one follows.
    if (beast_->is_done() && out_.status >= 100 && out_.status < 200 && out_.status != 101) {
      restart();
      continue;
    }
    if (n == 0) break;
  }
  if (!done() && (over_ = budget_.kept(data.substr(used), header_done(), beast_->chunked())) != Over::None) fail({});
  return used;
}

void ResponseParser::feed_eof() {
  if (done()) return;
  if (!beast_->got_some()) throw Error(ErrorKind::Io, "connection closed without a response");
  boost::beast::error_code ec;
  beast_->put_eof(ec);
  if (ec) fail(ec);
}

bool ResponseParser::done() const noexcept { return beast_->is_done(); }
bool ResponseParser::header_done() const noexcept { return beast_->is_header_done(); }
bool ResponseParser::keep_alive() const noexcept {
  return beast_->is_done() && beast_->keep_alive() && out_.status != 101;
}

// ---- RequestParser ---------------------------------------------------------------------

void RequestBeast::on_request_impl(bhttp::verb, string_view method, string_view target, int version,
                                   error_code&) {
  auto& h = owner_.head_;
  h.method.assign(method.data(), method.size());
  h.target.assign(target.data(), target.size());
  h.version = version;
}

void RequestBeast::on_field_impl(bhttp::field, string_view name, string_view value, error_code&) {
  owner_.head_.headers.add(std::string(name.data(), name.size()), std::string(value.data(), value.size()));
}

void RequestBeast::on_header_impl(error_code& ec) {
  if ((owner_.over_ = owner_.budget_.header_end()) != Over::None) ec = stop_code();
}

void RequestBeast::on_chunk_header_impl(std::uint64_t size, string_view ext, error_code& ec) {
  owner_.over_ = owner_.budget_.chunk_header(size, {ext.data(), ext.size()});
  if (owner_.over_ != Over::None) ec = stop_code();
}

RequestParser::RequestParser(std::size_t max_header, std::size_t max_body) : max_body_(max_body), budget_(max_header) {
  beast_.emplace(*this);
  beast_->eager(true);
  beast_->body_limit(static_cast<std::uint64_t>(max_body));
}

RequestParser::~RequestParser() = default;

void RequestParser::fail(const boost::beast::error_code& ec) {
  if (ec == bhttp::error::header_limit) over_ = Over::Header;
  if (over_ != Over::None)  // 431 for fields (the head's or the trailers'), 400 for a chunk line
    throw BadRequest(over_ == Over::ChunkLine ? 400 : 431, ErrorKind::TooLarge,
                     over_text(over_, "request header", budget_.max_header()));
  if (ec == bhttp::error::body_limit)
    throw BadRequest(413, ErrorKind::TooLarge, "request body larger than the limit of " + size_text(max_body_));
  throw BadRequest(400, ErrorKind::Protocol, "malformed request: " + ec.message());
}

std::size_t RequestParser::feed(std::string_view data) {
  std::size_t used = 0;
  while (used < data.size() && !done()) {
    boost::beast::error_code ec;
    std::size_t n = put(*beast_, budget_, data.substr(used), ec);
    used += n;
    if (ec == bhttp::error::need_more) break;
    if (ec) fail(ec);
    if (n == 0) break;
  }
  if (!done() && (over_ = budget_.kept(data.substr(used), header_done(), beast_->chunked())) != Over::None) fail({});
  if (done()) head_.keep_alive = beast_->keep_alive();
  return used;
}

bool RequestParser::done() const noexcept { return beast_->is_done(); }
bool RequestParser::header_done() const noexcept { return beast_->is_header_done(); }

}  // namespace ringlet::net::http::detail
