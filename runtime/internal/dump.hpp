// The fiber dump's internals shared by dump.cpp and dump_signal.cpp.
#pragma once

#include <atomic>

#include <signal.h>

#include <string>

namespace ringlet::detail {

// The dump's text; caller_ret: the address the public call returns to (the calling fiber's
// frames begin there).
std::string build_dump(const void* caller_ret);
// All of text to fd (the runtime's own write): false and errno if not.
bool write_all(int fd, const std::string& text) noexcept;

// The dump on a signal (RunOptions::dump_signal). The signal in force for a run: `from_options`
// if >= 0, else RINGLET_DUMP_SIGNAL (a name, QUIT or SIGQUIT, or a number; 0 or off: none),
// else SIGQUIT. A value that names no signal throws std::invalid_argument.
int dump_signal_setting(int from_options);
// A run starts / ends with that signal (0: none). The first run installs the handler, with
// the real sigaction, if the signal's disposition is SIG_DFL (a program's own handler or
// SIG_IGN stays, silently); the last one to end puts SIG_DFL back if the handler is still
// ours. The handler only writes to an eventfd; a thread started on first use writes the dump.
void dump_signal_acquire(int sig);
void dump_signal_release(int sig) noexcept;
// A single-threaded process gets no dump thread at install (a second thread would cost every
// malloc its lock for the process's life: glibc's __libc_single_threaded): the first signal
// sets this and wakes the loop of the thread it landed on, whose next pass starts the thread
// (start_dump_thread); the thread then writes the dump. A loop held by a busy fiber is one
// the dump could not read anyway.
extern std::atomic<bool> dump_thread_wanted;
void start_dump_thread() noexcept;
// Whether sa is the dump signal's handler (the runtime's own): a layer that shows a program
// its signal dispositions (the patch) shows SIG_DFL for it, the disposition it replaced.
bool is_dump_signal_handler(const struct sigaction& sa) noexcept;

}  // namespace ringlet::detail
