// TlsContext / TlsStream: OpenSSL over memory BIOs, the bytes moved by TcpStream.
#include "ringlet/net/tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <system_error>
#include <utility>

namespace ringlet::net {
namespace {

// OpenSSL's queued errors, as text; `fallback` if there are none.
std::string openssl_errors(std::string fallback) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += reason ? reason : buf;
  }
  return out.empty() ? fallback : out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

TlsContext TlsContext::client(const ClientOptions& o) {
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (!raw) throw TlsError("TLS: cannot create a context: " + openssl_errors("out of memory"));
  TlsContext c;
  c.ctx_.reset(raw, SSL_CTX_free);
  c.verify_ = o.verify;
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  // A peer that closes without close_notify ends the stream (close-delimited bodies rely on
  // it); truncation of a delimited body is caught by the HTTP parser.
  SSL_CTX_set_options(raw, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (o.verify) {
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(raw, o.ca_file.c_str(), nullptr) != 1)
        throw TlsError("TLS: cannot load CA file " + o.ca_file + ": " + openssl_errors("unreadable"));
    } else if (SSL_CTX_set_default_verify_paths(raw) != 1) {
      throw TlsError("TLS: cannot load the system CA store: " + openssl_errors("unknown error"));
    }
  } else {
    SSL_CTX_set_verify(raw, SSL_VERIFY_NONE, nullptr);
  }
  return c;
}

TlsContext TlsContext::server(const std::string& cert_file, const std::string& key_file) {
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (!raw) throw TlsError("TLS: cannot create a context: " + openssl_errors("out of memory"));
  TlsContext c;
  c.ctx_.reset(raw, SSL_CTX_free);
  c.server_ = true;
  c.verify_ = false;
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (SSL_CTX_use_certificate_chain_file(raw, cert_file.c_str()) != 1)
    throw TlsError("TLS: cannot load certificate " + cert_file + ": " + openssl_errors("unreadable"));
  if (SSL_CTX_use_PrivateKey_file(raw, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw TlsError("TLS: cannot load key " + key_file + ": " + openssl_errors("unreadable"));
  if (SSL_CTX_check_private_key(raw) != 1)
    throw TlsError("TLS: key " + key_file + " does not match " + cert_file);
  return c;
}

TlsStream::TlsStream(TcpStream tcp, const TlsContext& ctx, std::string_view host)
    : tcp_(std::move(tcp)), host_(host) {
  ssl_ = SSL_new(ctx.native());
  if (!ssl_) throw TlsError("TLS: " + openssl_errors("cannot create a session"));
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(std::exchange(ssl_, nullptr));
    throw TlsError("TLS: out of memory");
  }
  BIO_set_mem_eof_return(in_, -1);  // empty means "want more", not end of stream
  SSL_set_bio(ssl_, in_, out_);
  if (ctx.is_server()) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  if (!host_.empty()) {
    bool ip = is_ip_literal(host_);
    if (!ip) SSL_set_tlsext_host_name(ssl_, host_.c_str());  // SNI carries names only
    if (ctx.verifies()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str())
                  : X509_VERIFY_PARAM_set1_host(param, host_.c_str(), host_.size());
      if (ok != 1) throw TlsError("TLS: cannot check certificates for host " + host_);
    }
  }
}

TlsStream::TlsStream(TlsStream&& o) noexcept
    : tcp_(std::move(o.tcp_)), ssl_(std::exchange(o.ssl_, nullptr)), in_(std::exchange(o.in_, nullptr)),
      out_(std::exchange(o.out_, nullptr)), host_(std::move(o.host_)), rbuf_(std::move(o.rbuf_)) {}

TlsStream& TlsStream::operator=(TlsStream&& o) noexcept {
  if (this != &o) {
    if (ssl_) SSL_free(ssl_);
    tcp_ = std::move(o.tcp_);
    ssl_ = std::exchange(o.ssl_, nullptr);
    in_ = std::exchange(o.in_, nullptr);
    out_ = std::exchange(o.out_, nullptr);
    host_ = std::move(o.host_);
    rbuf_ = std::move(o.rbuf_);
  }
  return *this;
}

TlsStream::~TlsStream() {
  if (ssl_) SSL_free(ssl_);  // frees both BIOs
}

// Send whatever OpenSSL has written into the out BIO.
void TlsStream::flush(Deadline d) {
  char* data = nullptr;
  long n = BIO_get_mem_data(out_, &data);
  if (n > 0) {
    tcp_.write_all({data, static_cast<std::size_t>(n)}, d);
    (void)BIO_reset(out_);
  }
}

// Run an SSL call until it completes, moving bytes between the socket and the BIOs.
// Returns the call's positive result, or 0 at a clean end of stream (reads).
template <class Op>
int TlsStream::drive(Op op, Deadline d, bool reading) {
  if (!ssl_) throw std::system_error(EBADF, std::generic_category(), "TLS stream is closed");
  for (;;) {
    ERR_clear_error();
    int r = op();
    int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    flush(d);  // a handshake message, an alert, or the written record
    if (err == SSL_ERROR_NONE) return r;
    if (err == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify
    if (err == SSL_ERROR_WANT_READ) {
      constexpr std::size_t kRead = 16384;  // a TLS record's worth
      if (!rbuf_) rbuf_ = std::make_unique_for_overwrite<char[]>(kRead);
      std::size_t n = tcp_.read_some({rbuf_.get(), kRead}, d);
      if (n == 0) {
        if (reading && SSL_is_init_finished(ssl_)) return 0;  // closed without close_notify
        throw TlsError("TLS: connection closed by the peer during the handshake");
      }
      BIO_write(in_, rbuf_.get(), static_cast<int>(n));
      continue;
    }
    if (err == SSL_ERROR_WANT_WRITE) continue;  // memory BIOs take everything
    long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK)
      throw TlsError(std::string("TLS: certificate verify failed: ") + X509_verify_cert_error_string(verify) +
                     (host_.empty() ? "" : " (host " + host_ + ")"));
    throw TlsError("TLS: " + openssl_errors(err == SSL_ERROR_SYSCALL ? "connection failed" : "protocol error"));
  }
}

void TlsStream::handshake(Deadline d) {
  drive([this] { return SSL_do_handshake(ssl_); }, d, false);
}

std::size_t TlsStream::read_some(MutableBuffer b, Deadline d) {
  if (b.size == 0) return 0;
  int want = static_cast<int>(std::min<std::size_t>(b.size, 1u << 30));
  return static_cast<std::size_t>(drive([&] { return SSL_read(ssl_, b.data, want); }, d, true));
}

void TlsStream::write_all(ConstBuffer b, Deadline d) {
  auto* p = static_cast<const char*>(b.data);
  std::size_t left = b.size;
  while (left > 0) {
    int chunk = static_cast<int>(std::min<std::size_t>(left, 1u << 20));
    int n = drive([&] { return SSL_write(ssl_, p, chunk); }, d, false);
    if (n <= 0) throw TlsError("TLS: connection closed while writing");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void TlsStream::shutdown(Deadline d) noexcept {
  if (!ssl_ || !tcp_.is_open()) return;
  try {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    flush(d);
  } catch (...) {
  }
}

std::string TlsStream::protocol() const { return ssl_ ? SSL_get_version(ssl_) : ""; }
std::string TlsStream::server_name() const {
  const char* n = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
  return n ? n : "";
}

std::string TlsStream::cipher() const { return ssl_ ? SSL_get_cipher_name(ssl_) : ""; }

}  // namespace ringlet::net
