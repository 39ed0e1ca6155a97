// The runtime's own system calls, made without going through libc's exported symbols.
//
// A library preloaded into the process may interpose read, write, poll, close, connect...
// Then a call from libringlet to ::read would resolve to the interposer and, on a fiber, come back
// into the runtime. Everything the runtime and net/ do with a file descriptor therefore goes
// through these wrappers, which enter the kernel directly (syscall(2) is not interposed).
// Same contract as libc: -1 and errno on failure.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>

namespace ringlet::detail::sys {

inline ssize_t read(int fd, void* buf, std::size_t n) noexcept { return ::syscall(SYS_read, fd, buf, n); }
inline ssize_t write(int fd, const void* buf, std::size_t n) noexcept {
  return ::syscall(SYS_write, fd, buf, n);
}
inline ssize_t pread(int fd, void* buf, std::size_t n, off_t off) noexcept {
  return ::syscall(SYS_pread64, fd, buf, n, off);
}
inline ssize_t pwrite(int fd, const void* buf, std::size_t n, off_t off) noexcept {
  return ::syscall(SYS_pwrite64, fd, buf, n, off);
}
inline ssize_t recv(int fd, void* buf, std::size_t n, int flags) noexcept {
  return ::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
}
inline ssize_t send(int fd, const void* buf, std::size_t n, int flags) noexcept {
  return ::syscall(SYS_sendto, fd, buf, n, flags, nullptr, 0);
}
inline ssize_t recvmsg(int fd, msghdr* m, int flags) noexcept { return ::syscall(SYS_recvmsg, fd, m, flags); }
inline ssize_t sendmsg(int fd, const msghdr* m, int flags) noexcept {
  return ::syscall(SYS_sendmsg, fd, m, flags);
}
inline int accept4(int fd, sockaddr* a, socklen_t* len, int flags) noexcept {
  return static_cast<int>(::syscall(SYS_accept4, fd, a, len, flags));
}
inline int connect(int fd, const sockaddr* a, socklen_t len) noexcept {
  return static_cast<int>(::syscall(SYS_connect, fd, a, len));
}
inline int socket(int domain, int type, int proto) noexcept {
  return static_cast<int>(::syscall(SYS_socket, domain, type, proto));
}
inline int close(int fd) noexcept { return static_cast<int>(::syscall(SYS_close, fd)); }
inline int fcntl(int fd, int cmd, long arg = 0) noexcept {
  return static_cast<int>(::syscall(SYS_fcntl, fd, cmd, arg));
}
// poll(2) with a timeout in milliseconds (-1: none), as ppoll so every architecture has it.
inline int poll(pollfd* fds, nfds_t n, int timeout_ms) noexcept {
  if (timeout_ms < 0) return static_cast<int>(::syscall(SYS_ppoll, fds, n, nullptr, nullptr, 0));
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
  return static_cast<int>(::syscall(SYS_ppoll, fds, n, &ts, nullptr, 0));
}
inline int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) noexcept {
  return static_cast<int>(::syscall(SYS_epoll_pwait, epfd, evs, max, timeout_ms, nullptr, 0));
}

}  // namespace ringlet::detail::sys
