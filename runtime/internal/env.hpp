// Settings read from the environment, and the once-per-process engine notice.
#pragma once

#include <cstddef>
#include <string>

#include "ringlet/run.hpp"

namespace ringlet::detail {

// RINGLET_STACK_SIZE: bytes, with an optional K or M suffix; default 64 KiB.
std::size_t env_stack_size();
// RINGLET_BACKEND: "io_uring" or "epoll"; unset or "auto": Auto.
Backend env_backend();
// RINGLET_SPIN_US: how long (µs, 0..1000) a core of a multi-core run looks for other
// cores' wake-ups before it sleeps; default 20.
long env_spin_us();
// RINGLET_VERBOSE=1: say which engine runs, with its features, for every scheduler.
bool env_verbose() noexcept;
// Print "ringlet: engine <what>" on stderr once per process.
void say_once_engine(const std::string& what);
// Whether that notice has been printed in this process.
bool engine_notice_said() noexcept;

}  // namespace ringlet::detail
