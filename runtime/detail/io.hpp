// The one generic blocking-operation path every I/O call of ringlet goes through.
#pragma once

#include "detail/reactor.hpp"

namespace ringlet::detail {

// Perform req, parking the running fiber (or blocking a plain thread) until it completes
// or the deadline passes. Returns the result or -errno (-ETIMEDOUT when `d` passed).
// A switch point: throws GreenletExit, Timeout::Expired (enclosing scope) or DeadlockError.
long perform(const IoRequest& req, Deadline d);

}  // namespace ringlet::detail
