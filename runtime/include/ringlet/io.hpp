// Blocking I/O on file descriptors that parks the fiber instead of the thread.
//
// Each call is a switch point and takes a deadline; an enclosing Timeout applies too. On a
// fiber the operation goes through the scheduler's reactor (io_uring, or epoll readiness +
// a non-blocking attempt); on a plain thread it is the ordinary blocking call, bounded by
// the deadline with poll(2).
//
// Errors throw std::system_error; the overloads taking std::error_code& report them there
// instead (a passed explicit deadline is std::errc::timed_out). EOF is a return of 0.
#pragma once

#include <cstddef>
#include <system_error>

#include "ringlet/time.hpp"

namespace ringlet::io {

std::size_t read(int fd, void* buf, std::size_t n, Deadline d = Deadline::never());
std::size_t read(int fd, void* buf, std::size_t n, Deadline d, std::error_code& ec);

std::size_t write(int fd, const void* buf, std::size_t n, Deadline d = Deadline::never());
std::size_t write(int fd, const void* buf, std::size_t n, Deadline d, std::error_code& ec);

// Write all n bytes (several writes if needed); throws on error or deadline.
void write_all(int fd, const void* buf, std::size_t n, Deadline d = Deadline::never());

// Wait until fd is ready for `events` (POLLIN, POLLOUT, ...). Returns the ready events, or 0
// if the deadline passed first.
short poll(int fd, short events, Deadline d = Deadline::never());

}  // namespace ringlet::io
