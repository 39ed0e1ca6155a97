// Name resolution that never blocks the scheduler.
//
//   auto addrs = ringlet::net::resolve("example.com", 443);        // every address, in the
//   auto addrs = ringlet::net::resolve("localhost:8080", 2s);      // system's preferred order
//
// Numeric addresses and Unix paths are answered at once, without a lookup. Names are
// resolved by the C library's getaddrinfo on a small pool of resolver threads while the
// calling fiber parks, so /etc/hosts, /etc/nsswitch.conf, /etc/gai.conf and resolv.conf
// apply exactly as they do for every other program on the machine. A lookup waits at most
// until the deadline (10 s when none is given); a lookup abandoned at its deadline finishes
// on its thread and its answer is dropped.
//
// Failures throw std::system_error in dns_category() (its message is the resolver's, e.g.
// "Name or service not known"), or std::errc::timed_out.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "ringlet/net/address.hpp"
#include "ringlet/time.hpp"

namespace ringlet::net {

// getaddrinfo's EAI_* codes (EAI_NONAME, EAI_AGAIN, ...), as error_code values.
const std::error_category& dns_category() noexcept;

// The deadline a lookup without one gets.
inline constexpr std::chrono::seconds kDefaultResolveTimeout{10};

// host (a name or an IP literal) and port. `family`: AF_UNSPEC (both), AF_INET or AF_INET6.
std::vector<Address> resolve(std::string_view host, std::uint16_t port,
                             Deadline d = Deadline::never(), int family = AF_UNSPEC);
std::vector<Address> resolve(std::string_view host, std::uint16_t port, Deadline d, int family,
                             std::error_code& ec);

// "host:port", "[v6]:port" or a Unix path. Malformed text throws std::invalid_argument.
std::vector<Address> resolve(std::string_view address, Deadline d = Deadline::never());
std::vector<Address> resolve(std::string_view address, Deadline d, std::error_code& ec);

}  // namespace ringlet::net
