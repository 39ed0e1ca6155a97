// The one I/O path. Every blocking operation on a descriptor — ringlet::io, net's sockets,
// connect, and the libc hooks built on ringlet — goes through perform() below; the C++ edge
// throws from it (perform_or_throw), a C caller maps it to -1/errno. Closing a descriptor under
// waiters, on any core, is close_waiting(). Internal.
#pragma once

#include <atomic>
#include <cstdint>

#include "internal/reactor.hpp"

namespace ringlet::detail {

// Perform req: on a fiber through its scheduler's reactor (parked until done), on a plain
// thread as the ordinary blocking call bounded by d. Never throws. On a fiber it is a
// switch point: a pending kill answers {-ECANCELED, Killed}, an expired enclosing Timeout
// {-ETIMEDOUT, Scoped}, without starting anything. An operation that completed although a
// kill, timeout or signal raced it keeps its result (why = Notified; a kill stays pending
// for the next switch point). A wait ended by close_waiting() on its fd answers -EBADF.
// The engines' own retries (an -EAGAIN handed back, a poll the kernel ended by itself)
// stay inside the engine that has them (uring_reactor.cpp, epoll_reactor.cpp).
IoOutcome perform(const IoRequest& req, Deadline d) noexcept;

// The C++ edge of perform(): the result or -errno (-ETIMEDOUT when `d` passed); throws
// GreenletExit, Timeout::Expired (an enclosing scope) or DeadlockError (see settle()).
long perform_or_throw(const IoRequest& req, Deadline d);

// True if reads from the stream socket fd may not return the bytes as queued, so that
// IoRequest::plain_reads must not be declared for them: an upper layer on it (TCP_ULP, such
// as kernel TLS) or SO_RCVLOWAT above 1. Two getsockopt calls: for a socket first seen.
bool reads_shaped(int fd) noexcept;

// A read/write/recv/send of n bytes at buf (capped at what Linux moves in one call).
IoRequest buffer_request(IoRequest::Op op, int fd, const void* buf, std::size_t n, int flags,
                         const char* what) noexcept;
// A wait for `events` (POLLIN, POLLOUT...) on fd, for perform().
IoRequest poll_request(int fd, short events, const char* what) noexcept;

// The start of a connect(2) on a socket that is non-blocking for the call: 0 (connected),
// -EINPROGRESS (wait for POLLOUT, then read SO_ERROR) or -errno, with why = Notified; or the
// wait's outcome if the nap below was ended otherwise (its deadline: -ETIMEDOUT).
IoOutcome connect_start(int fd, const sockaddr* addr, socklen_t len, Deadline d) noexcept;
// connect(2) on a non-blocking socket, waiting for the outcome like perform_or_throw():
// 0 or -errno.
long connect(int fd, const sockaddr* addr, socklen_t len, Deadline d);

// --- closing under waiters ---------------------------------------------------------------

// Make every fiber parked in perform() on fd, on every core of the caller's run, end with
// -EBADF; call it before close(2) (or dup2 over fd). Only a caller that knows someone may
// wait on fd calls it (net's Socket::busy_, a libc hook's count of waiters): a close that
// nobody waits on costs nothing here.
void close_waiting(int fd) noexcept;

// fd's number is about to be closed, or to name another file (dup2 over it), or to leave a
// caller that reports its closes (IoRequest::closes_seen), and nobody waits on it (else
// close_waiting). Bumps its close generation (every core's engine sees it at its next park
// on the number) and lets this core's engine drop what it keeps (epoll: EPOLL_CTL_DEL).
// From any thread; on a plain thread only the generation.
void fd_replaced(int fd) noexcept;
// The same for every number in [first, last] (close_range, closefrom): one global count.
void fds_replaced(unsigned first, unsigned last) noexcept;
extern std::atomic<std::uint32_t> g_range_closes;

// How many times close_waiting(fd) or fd_replaced(fd) ran: an engine reads it around a wait to tell a close
// (-ECANCELED from cancel_fd) from the kernel ending the wait by itself. One table of
// 2^20 entries, mapped (MAP_NORESERVE) by the first close_waiting(); its zero pages read
// as 0, which is also the answer before the table exists. A descriptor beyond the table
// (RLIMIT_NOFILE over 2^20), or every descriptor once the table cannot be mapped, shares
// one counter instead: a close of another such descriptor may then make a wait the kernel
// ended look like a close (EBADF), but a close never looks like nothing happened.
constexpr int kCloseTableFds = 1 << 20;
extern std::atomic<std::atomic<std::uint32_t>*> g_close_generations;
extern std::atomic<std::uint32_t> g_untracked_closes;
extern std::atomic<bool> g_no_close_table;
inline std::uint32_t close_generation(int fd) noexcept {
  if (static_cast<unsigned>(fd) < static_cast<unsigned>(kCloseTableFds)) {
    if (std::atomic<std::uint32_t>* t = g_close_generations.load(std::memory_order_acquire))
      return t[fd].load(std::memory_order_acquire);
    if (!g_no_close_table.load(std::memory_order_acquire)) return 0;
  }
  return g_untracked_closes.load(std::memory_order_acquire);
}

}  // namespace ringlet::detail
