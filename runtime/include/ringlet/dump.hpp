// The fiber dump: every fiber of every scheduler of the process, what it waits on and its
// backtrace, as text (Go's goroutine dump, the JVM's kill -3).
#pragma once

#include <iosfwd>
#include <string>

namespace ringlet {

// Write the dump of every fiber of every scheduler in the process to `out`: for each, its
// id, name, core, state (running, runnable, parked, new), what it waits on (the wait, the
// descriptor, the fiber joined, the deadline and time left), how long it has been parked,
// where it was spawned from, and its backtrace, symbolised (function+offset and the library;
// file:line where debug information exists and elfutils' libdw.so.1 can be loaded). Fibers
// with the same state, wait and frames are one entry with their count.
// Callable from a fiber of any core, from a plain thread, with or without a run. Parked
// fibers' stacks are read on their own scheduler's thread without resuming them; a core that
// does not answer within 200 ms (a fiber holds it without switching) is said to. A calling
// fiber parks while it waits for the other cores and while the frames are named (on a
// helper thread: libdw needs more stack than a fiber has); its own core is read before, at
// once. Not from a signal handler (it allocates); from code the loop runs outside any fiber
// (a post_call), the other cores of its run may not be woken to answer.
void dump(std::ostream& out);
std::string dump_text();

}  // namespace ringlet

// The same, for C callers (a debugger, a signal-driven tool): writes the dump to fd in one
// go. 0, or -errno if it could not be written (or built: -ENOMEM).
extern "C" int ringlet_dump_fd(int fd);
