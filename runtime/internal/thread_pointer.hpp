// A fiber's own thread pointer: the register (%fs on x86-64) through which compiled code
// reaches __thread / thread_local variables. A fiber may own a TLS block of its own (the
// patch gives one to each fiber thread, so that its thread-locals are its own); the
// scheduler then loads that fiber's thread pointer whenever it switches to it, and its OS
// thread's own ("home") pointer whenever it switches to any other fiber or to the loop.
//
// What the runtime keeps in its own thread-locals (the current scheduler, the waiter
// identity) is written into a block when a fiber adopts it, so code on a fiber with its own
// block finds its scheduler as before. Anything else that must stay per OS thread and that
// code on such a fiber updates (a signal handler's counters) reaches the home block through
// carrier_local().
#pragma once

#include <cstdint>

namespace ringlet::detail {

// The thread pointer in force now (the address of the TCB %fs points at).
inline void* thread_pointer() noexcept {
  void* p;
  asm volatile("mov %%fs:0, %0" : "=r"(p));
  return p;
}

// Load a thread pointer: wrfsbase where the CPU and kernel allow it (AT_HWCAP2 FSGSBASE,
// unless RINGLET_FSGSBASE=0), else the arch_prctl system call. Async-signal-safe.
void set_thread_pointer(void* tp) noexcept;
// "wrfsbase" or "arch_prctl": what set_thread_pointer uses in this process.
const char* thread_pointer_method() noexcept;

// The running OS thread's own thread pointer while a scheduler runs here (whatever fiber
// runs now), else the thread pointer in force.
void* home_thread_pointer() noexcept;

// Give the running fiber a TLS block of its own (tp: its TCB), or (null) take it back to its
// OS thread's. The runtime's own thread-locals are set in the block first. The fiber must
// stay on this OS thread while it owns a block (fibers never move between schedulers).
// Refused (false) off a fiber.
bool adopt_thread_pointer(void* tp) noexcept;

// v, a static-TLS variable of this library, as its OS thread's home block holds it.
void* carrier_local_address(void* v) noexcept;
template <class T>
T& carrier_local(T& v) noexcept {
  return *static_cast<T*>(carrier_local_address(&v));
}

}  // namespace ringlet::detail
