// The resolver threads, shared by ringlet::net::resolve and the patch layer's getaddrinfo.
// Internal (not installed).
#pragma once

#include "ringlet/thread_pool.hpp"

namespace ringlet::net::detail {

// Eight threads that only run the C library's resolver. Never destroyed; re-made in a
// forked child. Counted as quiet threads (they never notify a user's primitive).
ThreadPool& resolver_pool();

}  // namespace ringlet::net::detail
