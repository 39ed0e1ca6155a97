// File locks and FIFO opens on a fiber (socket group): flock, fcntl F_SETLKW/F_OFD_SETLKW
// (from fd.cpp's fcntl hook), lockf(F_LOCK), and open/openat of a FIFO without
// O_NONBLOCK (and creat of one). Each first makes the call that cannot block; when the lock is held elsewhere
// (or the path is a FIFO) the real blocking call runs on a helper thread (offload.hpp)
// while the fiber parks. A record lock belongs to the process, an OFD or flock lock to the
// open file and a FIFO's descriptor to the process, so the helper's call has the caller's
// effect. A signal handler without SA_RESTART that runs meanwhile makes the call fail with
// EINTR (unless it had succeeded first, as natively); with SA_RESTART it goes on.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>

#include "internal/sys.hpp"
#include "offload.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

namespace ringlet::patch::detail {

// fd.cpp's fcntl hook hands F_SETLKW / F_OFD_SETLKW here.
int fcntl_lock_wait(int fd, int cmd, void* arg) noexcept;

namespace {

// Is `path` (relative to dirfd) a FIFO? Symbolic links are followed unless the open would
// not follow them (then it fails by itself).
bool is_fifo(int dirfd, const char* path, int flags) noexcept {
  struct stat sb;
  const int saved = errno;  // an open that succeeds leaves errno as it found it
  const bool fifo = ::fstatat(dirfd, path, &sb, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) == 0 &&
                    S_ISFIFO(sb.st_mode);
  errno = saved;
  return fifo;
}

// An open on a fiber that may wait (a FIFO without O_NONBLOCK, not O_RDWR, not O_PATH):
// on a helper; -2 if it should be made here as usual.
RINGLET_SLOW int open_slow(int dirfd, const char* path, int flags, mode_t mode) noexcept {
  if (!on_fiber(Socket) || (flags & (O_NONBLOCK | O_PATH)) || (flags & O_ACCMODE) == O_RDWR || !path)
    return -2;
  if (!is_fifo(dirfd, path, flags)) return -2;
  count_on_fiber(Call::open_fifo);
  if ((flags & O_ACCMODE) == O_WRONLY) {
    // A writer: with O_NONBLOCK the open succeeds if a reader is there (ENXIO if not), and
    // the flag taken off again leaves the open file as a blocking open makes it.
    const int saved = errno;
    const int fd = RINGLET_REAL(openat)(dirfd, path, flags | O_NONBLOCK, mode);
    if (fd >= 0) {
      const int fl = ringlet::detail::sys::fcntl(fd, F_GETFL);
      if (fl >= 0) ringlet::detail::sys::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
      fd_forget(fd);
      errno = saved;
      return fd;
    }
    if (errno != ENXIO) return fd;
    errno = saved;
  }
  auto call = [=] { return RINGLET_REAL(openat)(dirfd, path, flags, mode); };
  long fd;
  if (!offload_call(call, OffloadMode::Restartable, "open of a FIFO (patched)", &fd)) return -2;
  count_waited(Call::open_fifo);
  if (fd >= 0) fd_forget(static_cast<int>(fd));  // learnt afresh on first use
  return static_cast<int>(fd);
}

inline bool needs_mode(int flags) noexcept {
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

}  // namespace

int fcntl_lock_wait(int fd, int cmd, void* arg) noexcept {
  auto real = RINGLET_REAL(fcntl64);
  if (!on_fiber(Socket) || !arg) return real(fd, cmd, arg);
  count_on_fiber(Call::fcntl_setlkw);
  // The attempt that cannot block: F_SETLK / F_OFD_SETLK with the same request.
  const int r = real(fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, arg);
  if (r == 0 || (errno != EAGAIN && errno != EACCES)) return r;
  auto call = [=] { return RINGLET_REAL(fcntl64)(fd, cmd, arg); };
  long res;
  if (!offload_call(call, OffloadMode::Restartable, "fcntl lock (patched)", &res)) return real(fd, cmd, arg);
  count_waited(Call::fcntl_setlkw);
  return static_cast<int>(res);
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::patch::Socket;

namespace {

RINGLET_SLOW int flock_slow(int fd, int op) noexcept {
  auto real = RINGLET_REAL(flock);
  count_on_fiber(Call::flock);
  const int r = real(fd, op | LOCK_NB);
  if (r == 0 || errno != EWOULDBLOCK) return r;
  auto call = [=] { return RINGLET_REAL(flock)(fd, op); };
  long res;
  if (!offload_call(call, OffloadMode::Restartable, "flock (patched)", &res)) return real(fd, op);
  count_waited(Call::flock);
  return static_cast<int>(res);
}

template <class Real>
RINGLET_SLOW int lockf_slow(Real real, int fd, off64_t len) noexcept {
  count_on_fiber(Call::lockf);
  const int r = real(fd, F_TLOCK, len);
  if (r == 0 || (errno != EAGAIN && errno != EACCES)) return r;
  auto call = [=] { return RINGLET_REAL(lockf64)(fd, F_LOCK, len); };
  long res;
  if (!offload_call(call, OffloadMode::Restartable, "lockf (patched)", &res)) return real(fd, F_LOCK, len);
  count_waited(Call::lockf);
  return static_cast<int>(res);
}

}  // namespace

RINGLET_HOOK int flock(int fd, int op) {
  if (RINGLET_LIKELY(ringlet::detail::Scheduler::current() == nullptr) || (op & (LOCK_NB | LOCK_UN)) ||
      !on_fiber(Socket))
    return RINGLET_REAL(flock)(fd, op);
  return flock_slow(fd, op);
}

static int cancel_point_lockf(int fd, int cmd, off_t len) noexcept {
  if (RINGLET_LIKELY(ringlet::detail::Scheduler::current() == nullptr) || cmd != F_LOCK || !on_fiber(Socket))
    return RINGLET_REAL(lockf)(fd, cmd, len);
  return lockf_slow(RINGLET_REAL(lockf64), fd, len);
}

RINGLET_HOOK int lockf(int fd, int cmd, off_t len) {
  return RINGLET_CANCEL_POINT(cancel_point_lockf(fd, cmd, len));
}

static int cancel_point_lockf64(int fd, int cmd, off64_t len) noexcept {
  if (RINGLET_LIKELY(ringlet::detail::Scheduler::current() == nullptr) || cmd != F_LOCK || !on_fiber(Socket))
    return RINGLET_REAL(lockf64)(fd, cmd, len);
  return lockf_slow(RINGLET_REAL(lockf64), fd, len);
}

RINGLET_HOOK int lockf64(int fd, int cmd, off64_t len) {
  return RINGLET_CANCEL_POINT(cancel_point_lockf64(fd, cmd, len));
}

// open and its variants: the mode argument is there only with O_CREAT or O_TMPFILE.
#define RINGLET_OPEN_HOOK(name, real_call, dirfd_expr, ...)                           \
  {                                                                                   \
    mode_t mode = 0;                                                                  \
    if (needs_mode(flags)) {                                                          \
      va_list ap;                                                                     \
      va_start(ap, flags);                                                            \
      mode = va_arg(ap, mode_t);                                                      \
      va_end(ap);                                                                     \
    }                                                                                 \
    if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr)) {         \
      const int r = RINGLET_CANCEL_POINT(open_slow(dirfd_expr, path, flags, mode));                         \
      if (r != -2) return r;                                                          \
    }                                                                                 \
    return real_call;                                                                 \
  }

RINGLET_HOOK int open(const char* path, int flags, ...)
    RINGLET_OPEN_HOOK(open, RINGLET_REAL(open)(path, flags, mode), AT_FDCWD)
RINGLET_HOOK int open64(const char* path, int flags, ...)
    RINGLET_OPEN_HOOK(open64, RINGLET_REAL(open64)(path, flags, mode), AT_FDCWD)
RINGLET_HOOK int openat(int dirfd, const char* path, int flags, ...)
    RINGLET_OPEN_HOOK(openat, RINGLET_REAL(openat)(dirfd, path, flags, mode), dirfd)
RINGLET_HOOK int openat64(int dirfd, const char* path, int flags, ...)
    RINGLET_OPEN_HOOK(openat64, RINGLET_REAL(openat64)(dirfd, path, flags, mode), dirfd)

// creat is open(O_CREAT|O_WRONLY|O_TRUNC): on an existing FIFO it waits for a reader.
RINGLET_HOOK int creat(const char* path, mode_t mode) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode));
    if (r != -2) return r;
  }
  return RINGLET_REAL(creat)(path, mode);
}
RINGLET_HOOK int creat64(const char* path, mode_t mode) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode));
    if (r != -2) return r;
  }
  return RINGLET_REAL(creat64)(path, mode);
}

// _FORTIFY_SOURCE's forms (no mode: they refuse O_CREAT without one).
extern "C" int __open_2(const char*, int);
extern "C" int __open64_2(const char*, int);
extern "C" int __openat_2(int, const char*, int);
extern "C" int __openat64_2(int, const char*, int);

RINGLET_HOOK int __open_2(const char* path, int flags) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) && !needs_mode(flags)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(AT_FDCWD, path, flags, 0));
    if (r != -2) return r;
  }
  return RINGLET_REAL(__open_2)(path, flags);
}
RINGLET_HOOK int __open64_2(const char* path, int flags) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) && !needs_mode(flags)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(AT_FDCWD, path, flags, 0));
    if (r != -2) return r;
  }
  return RINGLET_REAL(__open64_2)(path, flags);
}
RINGLET_HOOK int __openat_2(int dirfd, const char* path, int flags) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) && !needs_mode(flags)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(dirfd, path, flags, 0));
    if (r != -2) return r;
  }
  return RINGLET_REAL(__openat_2)(dirfd, path, flags);
}
RINGLET_HOOK int __openat64_2(int dirfd, const char* path, int flags) {
  if (RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) && !needs_mode(flags)) {
    const int r = RINGLET_CANCEL_POINT(open_slow(dirfd, path, flags, 0));
    if (r != -2) return r;
  }
  return RINGLET_REAL(__openat64_2)(dirfd, path, flags);
}
