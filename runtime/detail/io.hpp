// The one generic blocking-operation path every I/O call of ringlet goes through.
#pragma once

#include "detail/reactor.hpp"

namespace ringlet::detail {

// Perform req, parking the running fiber (or blocking a plain thread) until it completes
// or the deadline passes. Returns the result or -errno (-ETIMEDOUT when `d` passed).
// A switch point: throws GreenletExit, Timeout::Expired (enclosing scope) or DeadlockError.
// An fd the engine hands back with -EAGAIN is waited for and tried again.
long perform(const IoRequest& req, Deadline d);

// A read/write/recv/send of n bytes at buf (capped at what Linux moves in one call).
IoRequest buffer_request(IoRequest::Op op, int fd, const void* buf, std::size_t n, int flags,
                         const char* what) noexcept;
// A wait for `events` (POLLIN, POLLOUT...) on fd, for perform().
IoRequest poll_request(int fd, short events, const char* what) noexcept;

// connect(2) on a non-blocking socket, waiting for the outcome like perform(): 0 or -errno.
long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d);

}  // namespace ringlet::detail
