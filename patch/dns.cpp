// Hooks of the "dns" group. glibc's resolver makes its socket calls internally, where no
// interposition reaches, so the lookups themselves are moved: on a fiber, the real call runs
// on ringlet's resolver threads (the ones ringlet::net::resolve uses) while the fiber parks.
//
// The call writes into the caller's memory (result lists, buffers), so the fiber waits for
// it to finish even if it is killed meanwhile; the kill is raised later, in C++ code. A
// lookup is bounded by the resolver's own timeouts (resolv.conf).
#include <netdb.h>

#include <memory>
#include <new>

#include <cerrno>

#include "dns_pool.hpp"
#include "ringlet/async_result.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {
namespace {

// Run fn() on a resolver thread and wait until it has returned, uninterruptibly (it writes
// into the caller's memory). False if it could not be handed over (then the caller makes
// the call itself).
template <class Fn>
bool on_resolver(Fn fn) noexcept {
  try {
    auto done = ringlet::net::detail::resolver_pool().submit([&fn] { fn(); });
    done.wait_uninterruptible("name lookup (patched)");  // never throws; a kill stays pending
    return true;
  } catch (...) {  // no pool, no thread, no memory: not handed over
    return false;
  }
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Dns;

RINGLET_HOOK int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  auto real = RINGLET_REAL(getaddrinfo);
  Here h = on_fiber(Dns);
  if (h) {
    count_on_fiber(Call::getaddrinfo);
    count_waited(Call::getaddrinfo);
    int rc = 0, err = 0;
    if (on_resolver([&] {
          rc = real(node, service, hints, res);
          err = errno;
        })) {
      if (rc == EAI_SYSTEM) errno = err;
      return rc;
    }
  }
  count_passed(Call::getaddrinfo);
  return real(node, service, hints, res);
}

RINGLET_HOOK int getnameinfo(const sockaddr* addr, socklen_t alen, char* host, socklen_t hostlen, char* serv,
                             socklen_t servlen, int flags) {
  auto real = RINGLET_REAL(getnameinfo);
  Here h = on_fiber(Dns);
  if (h) {
    count_on_fiber(Call::getnameinfo);
    count_waited(Call::getnameinfo);
    int rc = 0, err = 0;
    if (on_resolver([&] {
          rc = real(addr, alen, host, hostlen, serv, servlen, flags);
          err = errno;
        })) {
      if (rc == EAI_SYSTEM) errno = err;
      return rc;
    }
  }
  count_passed(Call::getnameinfo);
  return real(addr, alen, host, hostlen, serv, servlen, flags);
}

RINGLET_HOOK int gethostbyname_r(const char* name, hostent* ret, char* buf, size_t buflen, hostent** result,
                                 int* h_errnop) {
  auto real = RINGLET_REAL(gethostbyname_r);
  Here h = on_fiber(Dns);
  if (h) {
    count_on_fiber(Call::gethostbyname_r);
    count_waited(Call::gethostbyname_r);
    int rc = 0;
    if (on_resolver([&] { rc = real(name, ret, buf, buflen, result, h_errnop); })) return rc;
  }
  count_passed(Call::gethostbyname_r);
  return real(name, ret, buf, buflen, result, h_errnop);
}

// gethostbyname returns static storage; here it is per thread (glibc's is one buffer under
// a lock), so the lookup runs on a resolver thread into this thread's buffer. The buffer is
// on the heap, made on first use: in the static TLS image it would cost every fiber
// thread's TLS block 8 KiB.
namespace {
struct HostStorage {
  hostent ent;
  char buf[8192];
};
}  // namespace

RINGLET_HOOK hostent* gethostbyname(const char* name) {
  Here h = on_fiber(Dns);
  if (!h) {
    count_passed(Call::gethostbyname);
    return RINGLET_REAL(gethostbyname)(name);
  }
  count_on_fiber(Call::gethostbyname);
  count_waited(Call::gethostbyname);
  static thread_local std::unique_ptr<HostStorage> storage;
  if (!storage) storage.reset(new (std::nothrow) HostStorage{});
  if (!storage) {
    h_errno = NO_RECOVERY;
    return nullptr;
  }
  hostent& ent = storage->ent;
  char* buf = storage->buf;
  constexpr std::size_t kBuf = sizeof(HostStorage::buf);
  hostent* result = nullptr;
  int herr = 0;
  auto real = RINGLET_REAL(gethostbyname_r);
  int rc = 0;
  if (!on_resolver([&] { rc = real(name, &ent, buf, kBuf, &result, &herr); }))
    rc = real(name, &ent, buf, kBuf, &result, &herr);
  if (rc != 0 || !result) {
    h_errno = herr ? herr : NO_RECOVERY;
    return nullptr;
  }
  return result;
}
