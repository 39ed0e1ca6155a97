// What another OS thread of this process is doing in the kernel, for the blocking monitor:
// read from /proc/self/task/TID/syscall, without stopping or signalling the thread.
//
// The monitor signals a thread that holds its scheduler to take a backtrace in its handler.
// A handler changes what most blocking calls do, whatever SA_RESTART says (signal(7)): some
// end early with EINTR (nanosleep, poll, sigtimedwait, a timed futex wait, ...), others
// return what they have transferred so far (a write to a pipe or socket, a read with
// MSG_WAITALL). The program would see that only because it was watched. So the monitor
// signals only a thread on the CPU or in a call a handler leaves whole (an untimed futex
// wait, waitpid, flock, a FIFO's open, ...); for any other it reports what this file finds:
// the call, the instruction it was made from and the return addresses a scan of the
// thread's stack finds.
#pragma once

#include <sys/types.h>

namespace ringlet::detail {

struct BlockedCall {
  bool interrupt_changes_it = false;  // in a system call whose outcome a handler would change
  char name[80] = {};        // then, the call's name
  void* pc = nullptr;        // the user instruction the call returns to
  void* sp = nullptr;        // the user stack pointer at the call
};

// The call thread `tid` of this process is blocked in, if any (a thread on the CPU, or one
// whose file cannot be read, is not in one).
BlockedCall blocked_call(pid_t tid) noexcept;

// Up to `max` return addresses found on the stack from `sp` up (words that point just past a
// call instruction in a loaded object's code), read with process_vm_readv so that a stack
// unmapped meanwhile costs nothing. A scan, not an unwind: a stale return address left on
// the stack may appear among them.
int scan_return_addresses(const void* sp, void** out, int max) noexcept;

}  // namespace ringlet::detail
