#include "ringlet/net/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace ringlet::net {

namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool fail(std::string* why, std::string msg) {
  if (why) *why = std::move(msg);
  return false;
}

bool parse_port(std::string_view text, std::string_view p, std::uint16_t& out, std::string* why) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v > 65535)
    return fail(why, "bad address " + quoted(text) + ": port " + quoted(p) +
                         " is not a number from 0 to 65535");
  out = static_cast<std::uint16_t>(v);
  return true;
}

bool fill_ip(std::string_view lit, std::uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  if (lit.size() >= 2 && lit.front() == '[' && lit.back() == ']') lit = lit.substr(1, lit.size() - 2);
  char buf[INET6_ADDRSTRLEN + 1];
  if (lit.empty() || lit.size() >= sizeof buf) return false;
  std::memcpy(buf, lit.data(), lit.size());
  buf[lit.size()] = '\0';
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (::inet_pton(AF_INET, buf, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool fill_unix(std::string_view path, sockaddr_storage& ss, socklen_t& len, std::string* why) {
  auto* un = reinterpret_cast<sockaddr_un*>(&ss);
  if (path.empty()) return fail(why, "bad address \"\": an empty Unix socket path");
  const bool abstract = path.front() == '@';
  // A path needs its terminating NUL; an abstract name is counted by length, no NUL.
  if (path.size() + (abstract ? 0 : 1) > sizeof un->sun_path)
    return fail(why, "bad address " + quoted(path) + ": a Unix socket path is at most " +
                         std::to_string(sizeof un->sun_path - 1) + " bytes");
  std::memset(&ss, 0, sizeof ss);
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (abstract) un->sun_path[0] = '\0';
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return true;
}

}  // namespace

Address::Address() noexcept : storage_{} { storage_.ss_family = AF_UNSPEC; }

bool is_unix_address(std::string_view t) noexcept {
  return !t.empty() && (t.front() == '/' || t.front() == '.' || t.front() == '@' ||
                        t.substr(0, 5) == "unix:");
}

std::optional<HostPort> try_split_host_port(std::string_view text, std::string* why) {
  HostPort hp;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      fail(why, "bad address " + quoted(text) + ": '[' without its ']'");
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      fail(why, "bad address " + quoted(text) + ": missing \":port\" after the ']'");
      return std::nullopt;
    }
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      fail(why, "bad address " + quoted(text) +
                    ": missing port (write host:port, [ipv6]:port or a Unix path)");
      return std::nullopt;
    }
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      fail(why, "bad address " + quoted(text) + ": an IPv6 address needs brackets, as [" +
                    std::string(host) + "]:" + std::string(text.substr(colon + 1)));
      return std::nullopt;
    }
    port = text.substr(colon + 1);
  }
  if (host.empty()) {
    fail(why, "bad address " + quoted(text) + ": missing host (use 0.0.0.0 or [::] for any)");
    return std::nullopt;
  }
  if (!parse_port(text, port, hp.port, why)) return std::nullopt;
  hp.host = std::string(host);
  return hp;
}

HostPort split_host_port(std::string_view text) {
  std::string why;
  auto hp = try_split_host_port(text, &why);
  if (!hp) throw std::invalid_argument("ringlet::net: " + why);
  return *hp;
}

std::optional<Address> Address::try_parse(std::string_view text, std::string* why) {
  Address a;
  if (is_unix_address(text)) {
    if (text.substr(0, 5) == "unix:") text.remove_prefix(5);
    if (!fill_unix(text, a.storage_, a.len_, why)) return std::nullopt;
    return a;
  }
  auto hp = try_split_host_port(text, why);
  if (!hp) return std::nullopt;
  if (!fill_ip(hp->host, hp->port, a.storage_, a.len_)) {
    fail(why, "bad address " + quoted(text) + ": " + quoted(hp->host) +
                  " is not a numeric IPv4 or IPv6 address (names go through ringlet::net::resolve)");
    return std::nullopt;
  }
  return a;
}

Address Address::parse(std::string_view text) {
  std::string why;
  auto a = try_parse(text, &why);
  if (!a) throw std::invalid_argument("ringlet::net: " + why);
  return *a;
}

std::optional<Address> Address::try_ip(std::string_view literal, std::uint16_t port) noexcept {
  Address a;
  if (!fill_ip(literal, port, a.storage_, a.len_)) return std::nullopt;
  return a;
}

Address Address::ip(std::string_view literal, std::uint16_t port) {
  auto a = try_ip(literal, port);
  if (!a)
    throw std::invalid_argument("ringlet::net: " + quoted(literal) +
                                " is not a numeric IPv4 or IPv6 address");
  return *a;
}

Address Address::unix_path(std::string_view path) {
  Address a;
  std::string why;
  if (!fill_unix(path, a.storage_, a.len_, &why)) throw std::invalid_argument("ringlet::net: " + why);
  return a;
}

Address Address::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Address a;
  if (len > sizeof a.storage_) throw std::invalid_argument("ringlet::net: socket address too long");
  std::memcpy(&a.storage_, sa, len);
  a.len_ = len;
  return a;
}

Family Address::family() const noexcept {
  switch (storage_.ss_family) {
    case AF_INET: return Family::IPv4;
    case AF_INET6: return Family::IPv6;
    case AF_UNIX: return Family::Unix;
    default: return Family::Unspecified;
  }
}

std::uint16_t Address::port() const noexcept {
  switch (storage_.ss_family) {
    case AF_INET: return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    case AF_INET6: return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    default: return 0;
  }
}

void Address::set_port(std::uint16_t port) {
  switch (storage_.ss_family) {
    case AF_INET: reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port); return;
    case AF_INET6: reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port); return;
    default: throw std::logic_error("ringlet::net::Address::set_port: not an IP address");
  }
}

std::string Address::host() const {
  char buf[INET6_ADDRSTRLEN];
  switch (storage_.ss_family) {
    case AF_INET:
      return ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    case AF_INET6:
      return ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
      const std::size_t n = len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
      if (n == 0) return "";  // unnamed (the client end of a socketpair or connect)
      if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default: return "";
  }
}

std::string Address::to_string() const {
  switch (storage_.ss_family) {
    case AF_INET: return host() + ":" + std::to_string(port());
    case AF_INET6: return "[" + host() + "]:" + std::to_string(port());
    case AF_UNIX: {
      std::string h = host();
      return h.empty() ? "unix:(unnamed)" : h;
    }
    default: return "(no address)";
  }
}

bool Address::is_loopback() const noexcept {
  if (storage_.ss_family == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == 127;
  if (storage_.ss_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  return false;
}

bool operator==(const Address& a, const Address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

std::ostream& operator<<(std::ostream& os, const Address& a) { return os << a.to_string(); }

}  // namespace ringlet::net
