// The one generic blocking-operation path every I/O call of ringlet goes through.
#pragma once

#include <atomic>
#include <cstdint>

#include "detail/reactor.hpp"

namespace ringlet::detail {

// Perform req, parking the running fiber (or blocking a plain thread) until it completes
// or the deadline passes. Returns the result or -errno (-ETIMEDOUT when `d` passed).
// A switch point: throws GreenletExit, Timeout::Expired (enclosing scope) or DeadlockError.
// An fd the engine hands back with -EAGAIN is waited for and tried again.
long perform(const IoRequest& req, Deadline d);

// A read/write/recv/send of n bytes at buf (capped at what Linux moves in one call).
IoRequest buffer_request(IoRequest::Op op, int fd, const void* buf, std::size_t n, int flags,
                         const char* what) noexcept;
// A wait for `events` (POLLIN, POLLOUT...) on fd, for perform().
IoRequest poll_request(int fd, short events, const char* what) noexcept;

// connect(2) on a non-blocking socket, waiting for the outcome like perform(): 0 or -errno.
long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d);

// --- closing under waiters ---------------------------------------------------------------

// Make every fiber parked in perform() on fd, on every core of the caller's run, end
// (with -ECANCELED, which their caller reports as -EBADF); call it before close(2) (or dup2 over fd). Only a caller that knows someone may
// wait on fd calls it (net's Socket::busy_, the patch's FdState::waiters): a close that
// nobody waits on costs nothing here.
void close_waiting(int fd) noexcept;

// How many times close_waiting(fd) ran: an engine reads it around a wait to tell a close
// (-ECANCELED from cancel_fd) from the kernel ending the wait by itself. One table of
// 2^20 entries, mapped (MAP_NORESERVE) by the first close_waiting(); 0 before that and
// beyond the table.
constexpr int kCloseTableFds = 1 << 20;
extern std::atomic<std::atomic<std::uint32_t>*> g_close_generations;
inline std::uint32_t close_generation(int fd) noexcept {
  std::atomic<std::uint32_t>* t = g_close_generations.load(std::memory_order_acquire);
  if (!t || static_cast<unsigned>(fd) >= static_cast<unsigned>(kCloseTableFds)) return 0;
  return t[fd].load(std::memory_order_acquire);
}

}  // namespace ringlet::detail
