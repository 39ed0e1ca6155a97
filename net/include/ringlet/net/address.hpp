// Socket addresses: IPv4, IPv6 and Unix-domain, parsed from and printed as the strings
// people write: "127.0.0.1:8080", "[::1]:8080", "/run/app.sock", "@abstract-name".
//
//   auto a = ringlet::net::Address::parse("[::1]:8080");   // numeric only, no DNS
//   a.port();         // 8080
//   a.to_string();    // "[::1]:8080"
//
// Names ("example.com:80") are resolved by ringlet::net::resolve (dns.hpp), which also
// accepts everything parse() does.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace ringlet::net {

enum class Family : std::uint8_t { Unspecified, IPv4, IPv6, Unix };

class Address {
 public:
  Address() noexcept;  // Unspecified: no address

  // A numeric address: "a.b.c.d:port", "[v6]:port", a Unix path (containing '/', or
  // "unix:PATH"), or "@name" for Linux's abstract Unix namespace. Throws
  // std::invalid_argument naming the text and what is wrong with it.
  static Address parse(std::string_view text);
  // The same, without throwing: nullopt, with the reason in *why if given.
  static std::optional<Address> try_parse(std::string_view text, std::string* why = nullptr);

  // An IP literal without a port ("127.0.0.1", "::1", "[::1]") and a port.
  static Address ip(std::string_view literal, std::uint16_t port);
  // The same, without throwing: nullopt if `literal` is not an IP address (a name, say).
  static std::optional<Address> try_ip(std::string_view literal, std::uint16_t port) noexcept;
  // A Unix-domain path; a leading '@' names the abstract namespace.
  static Address unix_path(std::string_view path);
  // Whatever the kernel filled in (accept, recvfrom, getsockname).
  static Address from_sockaddr(const sockaddr* sa, socklen_t len);

  Family family() const noexcept;
  int domain() const noexcept { return storage_.ss_family; }  // AF_INET, AF_INET6, AF_UNIX
  std::uint16_t port() const noexcept;   // 0 for Unix addresses
  void set_port(std::uint16_t port);     // std::logic_error on a Unix address
  // The host part: "127.0.0.1", "::1", or the Unix path ("@name" for abstract ones).
  std::string host() const;
  // The form parse() reads back: "127.0.0.1:80", "[::1]:80", "/path", "@name".
  std::string to_string() const;
  bool is_loopback() const noexcept;

  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }

  friend bool operator==(const Address& a, const Address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Address& a);

// "host:port" or "[v6]:port" split apart (no resolution); the port must be a number
// 0-65535. Throws std::invalid_argument.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
HostPort split_host_port(std::string_view text);
std::optional<HostPort> try_split_host_port(std::string_view text, std::string* why = nullptr);

// Does `text` name a Unix-domain socket ("/path", "./sock", "unix:path", "@name")?
bool is_unix_address(std::string_view text) noexcept;

}  // namespace ringlet::net
