// Fiber threads' own thread ids (identity.cpp).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace ringlet::patch::detail {

struct ThreadRec;

// PID_MAX_LIMIT: the largest id the kernel ever hands out; fiber threads' ids are above it.
inline constexpr pid_t kPidMaxLimit = 4'194'304;

// Give r an id of its own (false: out of memory); give it back when r ends.
bool assign_thread_id(ThreadRec* r) noexcept;
void release_thread_id(ThreadRec* r) noexcept;
// In a forked child: no fiber thread but `keep` (fork's caller, null if main) is left, and
// it is the process's only thread: its id is the kernel's, the child's pid.
void forget_thread_ids_after_fork(ThreadRec* keep) noexcept;
// gettid() as the caller should see it.
pid_t patched_gettid() noexcept;
// tgkill (tgid -1: tkill) for a live fiber thread's id: 0 or -1/errno; -2 if tid names no
// fiber thread.
long signal_thread_id(pid_t tgid, pid_t tid, int sig) noexcept;
// The run time so far (ns) of the live fiber thread with id tid; false if tid names none.
bool fiber_thread_cpu_ns(pid_t tid, std::uint64_t* ns) noexcept;
// The kernel id a sched_*affinity call about pid acts on.
pid_t affinity_target(pid_t pid) noexcept;

}  // namespace ringlet::patch::detail
