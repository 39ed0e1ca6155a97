// Resolution by getaddrinfo on resolver threads. Why not c-ares on the reactor: getaddrinfo
// is what every other program on the machine uses, so nsswitch (files, dns, mdns, myhostname,
// systemd-resolved), /etc/hosts, gai.conf's address ordering and resolv.conf's options all
// apply without our reimplementing them; c-ares knows only files and DNS. Its cost is a
// thread hop (tens of microseconds) per lookup, which a name lookup's own latency dwarfs,
// and a lookup cannot be cancelled: the caller stops waiting at its deadline and the thread
// finishes alone.
#include "ringlet/net/dns.hpp"

#include "dns_pool.hpp"

#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <stdexcept>
#include <string>

#include "internal/scheduler.hpp"
#include "ringlet/thread_pool.hpp"

namespace ringlet::net {

namespace detail {
// Enough threads for a crawler's burst of distinct hosts. Never destroyed: a lookup still
// stuck in the C library at exit must not hold the process up while it joins. A forked
// child has none of the parent's threads, so it starts a pool of its own (the parent's is
// abandoned there, untouched: its lock may have been held at the fork).
namespace {
std::mutex pool_mu;
ThreadPool* pool = nullptr;
constexpr long kResolverThreads = 8;
}  // namespace

ThreadPool& resolver_pool() {
  static const bool registered = [] {
    pthread_atfork([] { pool_mu.lock(); }, [] { pool_mu.unlock(); },
                   [] {
                     if (pool) ringlet::detail::quiet_threads -= static_cast<long>(pool->size());
                     pool = nullptr;
                     pool_mu.unlock();
                   });
    return true;
  }();
  (void)registered;
  std::lock_guard lk(pool_mu);
  if (!pool) {
    // They only run getaddrinfo: fibers parked on a Lock cycle are still a deadlock. (A
    // fiber waiting for a lookup always has its deadline's timer, so it is never taken for
    // stuck.)
    // Started one at a time, as concurrent lookups need them.
    pool = new ThreadPool(ThreadPool::OnDemand{kResolverThreads, /*quiet=*/true});
  }
  return *pool;
}

}  // namespace detail

namespace {

class DnsCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "dns"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

struct Lookup {
  int code = 0;       // EAI_*
  int sys_errno = 0;  // for EAI_SYSTEM
  std::vector<Address> addrs;
};

Lookup lookup(const std::string& host, std::uint16_t port, int family) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address, not one per socket type
  addrinfo* res = nullptr;
  Lookup out;
  errno = 0;
  out.code = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (out.code != 0) {
    out.sys_errno = errno;
    return out;
  }
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a = Address::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    a.set_port(port);
    if (std::find(out.addrs.begin(), out.addrs.end(), a) == out.addrs.end()) out.addrs.push_back(a);
  }
  ::freeaddrinfo(res);
  if (out.addrs.empty()) out.code = EAI_NONAME;
  return out;
}

std::vector<Address> resolve_impl(std::string_view host, std::uint16_t port, Deadline d,
                                  int family, std::error_code& ec) {
  ec.clear();
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    throw std::invalid_argument("ringlet::net::resolve: family must be AF_UNSPEC, AF_INET or AF_INET6");
  if (host.empty()) throw std::invalid_argument("ringlet::net::resolve: empty host name");
  // IP literals need no lookup.
  if (auto a = Address::try_ip(host, port)) {
    if (family == AF_UNSPEC || family == a->domain()) return {*a};
    ec.assign(EAI_ADDRFAMILY, dns_category());
    return {};
  }
  if (d.is_never()) d = Deadline::after(kDefaultResolveTimeout);
  auto result = detail::resolver_pool().submit(lookup, std::string(host), port, family);
  if (!result.wait(d)) {
    ec = std::make_error_code(std::errc::timed_out);
    return {};
  }
  Lookup l = result.get();
  if (l.code == EAI_SYSTEM) {
    ec.assign(l.sys_errno ? l.sys_errno : EIO, std::system_category());
    return {};
  }
  if (l.code != 0) {
    ec.assign(l.code, dns_category());
    return {};
  }
  return std::move(l.addrs);
}

[[noreturn]] void raise(std::string_view what, const std::error_code& ec) {
  throw std::system_error(ec, "ringlet::net::resolve(\"" + std::string(what) + "\")");
}

}  // namespace

const std::error_category& dns_category() noexcept {
  static const DnsCategory c;
  return c;
}

std::vector<Address> resolve(std::string_view host, std::uint16_t port, Deadline d, int family,
                             std::error_code& ec) {
  return resolve_impl(host, port, d, family, ec);
}

std::vector<Address> resolve(std::string_view host, std::uint16_t port, Deadline d, int family) {
  std::error_code ec;
  auto v = resolve_impl(host, port, d, family, ec);
  if (ec) raise(host, ec);
  return v;
}

std::vector<Address> resolve(std::string_view address, Deadline d, std::error_code& ec) {
  ec.clear();
  if (is_unix_address(address)) return {Address::parse(address)};
  HostPort hp = split_host_port(address);
  return resolve_impl(hp.host, hp.port, d, AF_UNSPEC, ec);
}

std::vector<Address> resolve(std::string_view address, Deadline d) {
  std::error_code ec;
  auto v = resolve(address, d, ec);
  if (ec) raise(address, ec);
  return v;
}

}  // namespace ringlet::net
