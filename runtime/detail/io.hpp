// The one generic blocking-operation path every I/O call of ringlet goes through.
#pragma once

#include "detail/reactor.hpp"

namespace ringlet::detail {

// Perform req, parking the running fiber (or blocking a plain thread) until it completes
// or the deadline passes. Returns the result or -errno (-ETIMEDOUT when `d` passed).
// A switch point: throws GreenletExit, Timeout::Expired (enclosing scope) or DeadlockError.
// An fd the engine hands back with -EAGAIN is waited for and tried again.
long perform(const IoRequest& req, Deadline d);

// connect(2) on a non-blocking socket, waiting for the outcome like perform(): 0 or -errno.
long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d);

}  // namespace ringlet::detail
