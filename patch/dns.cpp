// Hooks of the "dns" group. glibc's resolver makes its socket calls internally, where no
// interposition reaches, so the lookups themselves are moved: on a fiber, the real call runs
// on ringlet's resolver threads (the ones ringlet::net::resolve uses) while the fiber parks.
//
// The call writes into the caller's memory (result lists, buffers), so the fiber waits for
// it to finish even if it is killed meanwhile; the kill is raised later, in C++ code. A
// lookup is bounded by the resolver's own timeouts (resolv.conf).
#include <netdb.h>

#include <atomic>
#include <cerrno>
#include <exception>

#include "dns_pool.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {
namespace {

// Run fn() on a resolver thread and park until it has returned. False if it could not be
// handed over (then the caller makes the call itself).
//
// The wake token is published only after submit() returns: submitting takes the pool's
// mutex, which under the thread group may park this fiber (and so move its epoch) when a
// resolver thread holds it. `slot` is the handshake: the fiber stores the token it will park
// with, the resolver swaps in kDone when the call has returned; whoever comes second knows
// the other's part is done (a token: wake it; kDone: don't park).
template <class Fn>
bool on_resolver(Here h, Fn fn) noexcept {
  constexpr std::uint64_t kUnset = ~std::uint64_t{0}, kDone = kUnset - 1;
  struct Job {
    Fiber* f;
    std::atomic<std::uint64_t> slot{kUnset};
  } job{h.f};
  try {
    h.s->expect_remote_wake();
    ringlet::net::detail::resolver_pool().submit([&job, &fn] {
      fn();
      Fiber* f = job.f;  // read before the swap: after it the fiber may be gone
      const std::uint64_t token = job.slot.exchange(kDone, std::memory_order_acq_rel);
      if (token != kUnset) Scheduler::wake(f, token, ringlet::detail::WakeReason::Notified);
    });
  } catch (...) {
    h.s->remote_wake_done();
    return false;
  }
  const std::uint64_t token = h.f->epoch.load(std::memory_order_relaxed);
  std::uint64_t expected = kUnset;
  if (job.slot.compare_exchange_strong(expected, token, std::memory_order_acq_rel)) {
    // Only the resolver's wake, with this token, ends the park (uninterruptible).
    h.s->park(token, ringlet::Deadline::never(), ringlet::detail::WaitInfo{"name lookup (patched)", nullptr},
              /*interruptible=*/false);
  }
  h.s->remote_wake_done();
  return true;
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
    if (on_resolver(h, [&] {
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
    if (on_resolver(h, [&] {
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
    if (on_resolver(h, [&] { rc = real(name, ret, buf, buflen, result, h_errnop); })) return rc;
  }
  count_passed(Call::gethostbyname_r);
  return real(name, ret, buf, buflen, result, h_errnop);
}

// gethostbyname returns static storage, per thread here as in glibc (which keeps it per
// thread too), so the lookup runs on a resolver thread into this thread's buffer.
RINGLET_HOOK hostent* gethostbyname(const char* name) {
  Here h = on_fiber(Dns);
  if (!h) {
    count_passed(Call::gethostbyname);
    return RINGLET_REAL(gethostbyname)(name);
  }
  count_on_fiber(Call::gethostbyname);
  count_waited(Call::gethostbyname);
  static thread_local hostent ent;
  static thread_local char buf[8192];
  hostent* result = nullptr;
  int herr = 0;
  auto real = RINGLET_REAL(gethostbyname_r);
  int rc = 0;
  if (!on_resolver(h, [&] { rc = real(name, &ent, buf, sizeof buf, &result, &herr); }))
    rc = real(name, &ent, buf, sizeof buf, &result, &herr);
  if (rc != 0 || !result) {
    h_errno = herr ? herr : NO_RECOVERY;
    return nullptr;
  }
  return result;
}
