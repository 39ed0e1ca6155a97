// TLS over a TcpStream, through OpenSSL, on fibers.
//
//   auto ctx = ringlet::net::TlsContext::client();                 // system CA store, verify on
//   ringlet::net::TlsStream tls{TcpStream::connect("example.com:443"), ctx, "example.com"};
//   tls.handshake(5s);                                              // SNI + certificate + name
//   tls.write_all("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//   std::size_t n = tls.read_some(buf);                             // 0 = end of stream
//
// OpenSSL never touches the socket: it reads from and writes to memory buffers, and this
// class moves the bytes with the TcpStream's own fiber-parking calls. So every deadline,
// Timeout and kill works as it does for plain sockets, on both engines.
//
// Failures throw TlsError (a std::runtime_error) saying what went wrong in OpenSSL's words,
// e.g. "certificate verify failed: self-signed certificate"; socket failures stay
// std::system_error (timed_out, connection reset, ...).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ringlet/net/socket.hpp"
#include "ringlet/time.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace ringlet::net {

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Settings shared by many connections (certificates, verification). Cheap to copy: copies
// share one SSL_CTX.
class TlsContext {
 public:
  struct ClientOptions {
    bool verify = true;       // check the peer's chain and name; false: accept anything
    std::string ca_file;      // PEM file of trusted CAs; empty: the system store
  };
  static TlsContext client(const ClientOptions& o);
  static TlsContext client() { return client(ClientOptions{}); }
  // A server with a PEM certificate chain and private key.
  static TlsContext server(const std::string& cert_file, const std::string& key_file);

  bool is_server() const noexcept { return server_; }
  bool verifies() const noexcept { return verify_; }
  SSL_CTX* native() const noexcept { return ctx_.get(); }

 private:
  std::shared_ptr<SSL_CTX> ctx_;
  bool server_ = false;
  bool verify_ = true;
};

class TlsStream {
 public:
  TlsStream() noexcept = default;
  // host: the name to send (SNI) and to check the certificate against (clients only); an
  // IP literal is checked against the certificate's IP addresses and sent no SNI.
  TlsStream(TcpStream tcp, const TlsContext& ctx, std::string_view host = {});
  TlsStream(TlsStream&& o) noexcept;
  TlsStream& operator=(TlsStream&& o) noexcept;
  ~TlsStream();

  void handshake(Deadline d = Deadline::never());
  // Up to n bytes of plaintext; 0 at the end of the stream (close_notify or the peer closing
  // the connection).
  std::size_t read_some(MutableBuffer b, Deadline d = Deadline::never());
  void write_all(ConstBuffer b, Deadline d = Deadline::never());
  // Send close_notify (best effort; does not wait for the peer's).
  void shutdown(Deadline d = Deadline::never()) noexcept;

  TcpStream& tcp() noexcept { return tcp_; }
  bool is_open() const noexcept { return ssl_ != nullptr && tcp_.is_open(); }
  // "TLSv1.3", and the negotiated cipher, once the handshake is done.
  std::string protocol() const;
  std::string cipher() const;
  // On a server: the host name the client sent (SNI), "" if none.
  std::string server_name() const;

 private:
  template <class Op>
  int drive(Op op, Deadline d, bool reading);
  void flush(Deadline d);

  TcpStream tcp_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // bytes from the peer, for OpenSSL to read (owned by ssl_)
  BIO* out_ = nullptr;  // bytes OpenSSL wrote, for us to send (owned by ssl_)
  std::string host_;
  // Where socket bytes land before OpenSSL takes them: on the heap, once per stream, not
  // 16 KiB of a fiber's stack on every call.
  std::unique_ptr<char[]> rbuf_;
};

}  // namespace ringlet::net
