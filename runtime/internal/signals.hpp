// Stack-overflow reporting: a SIGSEGV/SIGBUS handler on an alternate signal stack that
// recognises a hit on the running fiber's guard page and names the fiber before aborting.
#pragma once

#include "ringlet/detail/fiber.hpp"

namespace ringlet::detail {

// Once per process; chains to whatever handler was installed before.
void install_fault_handler();
// Per thread: an alternate signal stack unless a large enough one is set already.
void* setup_altstack(bool& owned);
void teardown_altstack(void* stack, bool owned) noexcept;
// Async-signal-safe: write the report naming f to stderr, then abort.
[[noreturn]] void report_overflow(const Fiber* f, const void* addr, bool at_switch) noexcept;

}  // namespace ringlet::detail
