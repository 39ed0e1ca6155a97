// stdio on descriptors that can block (issue 20): what files.cpp, calls.cpp and
// thread/stdio_lock.cpp share.
//
// glibc's stdio reads and writes through its internal __read/__write, which no hook sees,
// and locks a FILE with a futex owned by THREAD_SELF. So a FILE on a socket, pipe, FIFO or
// terminal is made (fdopen, fopen of such a file, the standard streams at start-up) as a
// fopencookie FILE whose functions call the patched read/write/lseek/close: a read parks
// the fiber thread, and off a fiber it is the plain system call. The FILE is marked
// _IO_USER_LOCK (glibc never takes its futex lock on it) and kOurs in _flags2; the hooks of
// calls.cpp take a lock of ours (StdioLock, recursive per thread; a fiber parks for it, a
// plain thread sleeps) around every stdio entry point on it, and flockfile takes the same
// lock. Other FILEs (regular files) stay glibc's; on a fiber, flockfile takes a lock of
// ours for them too, and while any such region is held (g_stdio.regions) the hooks make the
// other fiber threads' calls on that FILE wait for it.
#pragma once

#include <stdio.h>
#include <wchar.h>

#include <atomic>
#include <cstdint>

#include "ringlet/detail/wait.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

// A bit of FILE::_flags2 that glibc 2.36 does not use (it uses 1..128): the FILE is ours.
constexpr int kStdioOurs = 0x4000;

struct StdioState {
  // kStdioOurs once the cookie FILEs are in use (glibc 2.36, RINGLET_STDIO not "native"),
  // else 0: then no FILE is taken for ours, whatever its _flags2 holds.
  std::atomic<int> ours_mask{0};
  // flockfile regions held on fibers on FILEs not ours.
  std::atomic<int> regions{0};
};
extern StdioState g_stdio;

// C++'s standard streams synchronised with glibc's old standard FILEs move to the ones the
// patch took in their place (iostreams.cpp).
void stdio_retarget_iostreams(FILE* old_in, FILE* old_out, FILE* old_err) noexcept;

// A FILE the patch's popen made and nobody closed yet (process.cpp).
bool is_popen_stream(FILE* f) noexcept;

inline bool stdio_ours(const FILE* fp) noexcept {
  return (fp->_flags2 & g_stdio.ours_mask.load(std::memory_order_relaxed)) != 0;
}
// The common path of every hook: a FILE that is not ours, and no flockfile region of a
// fiber thread anywhere. Then the call is glibc's, untouched.
inline bool stdio_plain(const FILE* fp) noexcept {
  return !stdio_ours(fp) && g_stdio.regions.load(std::memory_order_relaxed) == 0;
}

// The lock of a FILE: recursive per thread (a fiber, or a plain OS thread).
struct StdioLock {
  ringlet::detail::SpinLock mu;
  const void* owner = nullptr;
  unsigned depth = 0;
  ringlet::detail::WaitList waiters;
};

// What a cookie FILE carries (files.cpp).
struct Cookie {
  int fd = -1;
  bool closed = false;
  char* buf = nullptr;  // the buffer we gave it (st_blksize, as glibc sizes one)
  FILE* fp = nullptr;
  StdioLock lock;
  int locking = 1;        // what __fsetlocking shows the program (FSETLOCKING_INTERNAL)
  unsigned pins = 0;      // fflush(NULL) is flushing it (registry lock)
  // Wide-character stdio (wide.cpp): the orientation fwide answers (0 none yet, 1 wide, -1
  // bytes), whether bytes went through the FILE (a byte call orients it), and the
  // conversion state of its multibyte characters.
  int orient = 0;
  bool byte_io = false;
  mbstate_t in_state{};
  mbstate_t out_state{};
  Cookie* next = nullptr;  // the registry of live cookies
  Cookie* prev = nullptr;
};
// The cookie of a FILE that stdio_ours() says is ours.
Cookie* cookie_of(FILE* fp) noexcept;

// The calling thread's identity for the locks: its fiber, or the OS thread.
const void* stdio_me() noexcept;
// Take (wait for) / give a lock. take_lock with try_only returns false if another holds it.
bool take_lock(StdioLock& l, bool try_only, bool* waited = nullptr) noexcept;
void give_lock(StdioLock& l) noexcept;

// Around one stdio call on fp when !stdio_plain(fp): true if a lock was taken, to give back
// with stdio_leave. Keeps errno.
bool stdio_enter(FILE* fp) noexcept;
void stdio_leave(FILE* fp) noexcept;
// stdio_leave for a FILE not ours that may be gone (fclose): fp only names the lock.
void stdio_leave_foreign(FILE* fp) noexcept;

// fclose took the FILE's lock and ran glibc's fclose: give the lock back and let the cookie
// go (freed once nobody flushes or waits on it).
void stdio_after_close(Cookie* c) noexcept;

// fflush(NULL): each of our FILEs under its lock (result = EOF if one fails); then glibc's
// own pass does the others.
void stdio_flush_ours(int& result) noexcept;

// fork's child: locks held or waited for by threads that are gone are free.
void stdio_forget_after_fork() noexcept;

struct StdioGuard {
  FILE* fp;
  bool held;
  explicit StdioGuard(FILE* f) noexcept : fp(f), held(stdio_enter(f)) {}
  ~StdioGuard() {
    if (held) stdio_leave(fp);
  }
  StdioGuard(const StdioGuard&) = delete;
  StdioGuard& operator=(const StdioGuard&) = delete;
};

}  // namespace ringlet::patch::detail
