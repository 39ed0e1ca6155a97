// FILEs on descriptors that can block (sockets, pipes, FIFOs, terminals), made so that their
// reads and writes go through the patched read/write (stdio.hpp says why): fdopen, fopen /
// fopen64 of a FIFO, socket or terminal, freopen of one of ours, and the standard streams
// at start-up. Everything else is glibc's own FILE, untouched.
//
// The mechanism reaches into FILE internals (a _flags2 bit, _IO_USER_LOCK, the cookie's
// place after the FILE, the buffer pointers freopen resets), so it is used only on the glibc
// it was checked against (2.36), after a probe of the layout; otherwise stdio stays glibc's,
// said once on stderr. RINGLET_STDIO=native turns it off.
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <stdio_ext.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "stdio.hpp"
#include "../thread/cancel.hpp"

namespace ringlet::patch::detail {

StdioState g_stdio;

namespace {

ringlet::detail::SpinLock g_reg_mu;
Cookie* g_reg = nullptr;  // live cookies (fflush(NULL), fork)

// glibc's struct _IO_cookie_file: the FILE, its vtable pointer, then the cookie.
void** cookie_slot(FILE* fp) noexcept {
  return reinterpret_cast<void**>(reinterpret_cast<char*>(fp) + sizeof(FILE) + sizeof(void*));
}

// errno is kept on success, as glibc's internal read and write keep it (the patched calls
// may leave the EAGAIN of their first, non-blocking attempt behind a call that then waited).
ssize_t c_read(void* p, char* buf, size_t n) {
  const int e = errno;
  static_cast<Cookie*>(p)->byte_io = true;
  ssize_t r;
  {
    CancelOff no_cancel;  // under glibc's stdio: no unwind from here (patch/README.md)
    r = ::read(static_cast<Cookie*>(p)->fd, buf, n);
  }
  if (r >= 0) errno = e;
  return r;
}

// As glibc's own file write: everything, or what was written before an error (0 if none:
// the error is in errno and the FILE's error flag).
//
// While it writes (and may park), the FILE shows no pending data: glibc's flush of every FILE
// (fflush(NULL), exit) takes no lock on ours and would write the same buffer again, parked
// under its list lock. glibc resets the pointers itself once the write returns.
ssize_t c_write(void* p, const char* buf, size_t n) {
  auto* c = static_cast<Cookie*>(p);
  const int fd = c->fd;
  const int e = errno;
  c->byte_io = true;
  FILE* fp = c->fp;
  char* pending = fp ? fp->_IO_write_ptr : nullptr;
  if (fp) fp->_IO_write_ptr = fp->_IO_write_base < pending ? fp->_IO_write_base : pending;
  size_t done = 0;
  ssize_t r = 0;
  CancelOff no_cancel;  // under glibc's stdio: no unwind from here (patch/README.md)
  while (done < n) {
    r = ::write(fd, buf + done, n - done);
    if (r < 0) break;
    done += static_cast<size_t>(r);
  }
  if (fp) fp->_IO_write_ptr = pending;
  if (r >= 0) errno = e;
  return static_cast<ssize_t>(done);
}

int c_seek(void* p, off64_t* pos, int whence) {
  const off64_t r = ::lseek64(static_cast<Cookie*>(p)->fd, *pos, whence);
  if (r < 0) return -1;
  *pos = r;
  return 0;
}

int c_close(void* p) {
  auto* c = static_cast<Cookie*>(p);
  const int fd = c->fd;
  c->fd = -1;
  c->closed = true;
  return ::close(fd);  // the patched close: the descriptor table learns of it
}

void link(Cookie* c) noexcept {
  g_reg_mu.lock();
  c->next = g_reg;
  if (g_reg) g_reg->prev = c;
  g_reg = c;
  g_reg_mu.unlock();
}

// Under g_reg_mu. A cookie whose FILE is gone is freed once nobody flushes or waits on it.
void free_if_done(Cookie* c) noexcept {
  if (c->fp || c->pins) return;
  c->lock.mu.lock();
  const bool idle = c->lock.waiters.empty() && c->lock.depth == 0;
  c->lock.mu.unlock();
  if (!idle) return;  // a call on a FILE being closed (undefined natively): keep it
  if (c->prev) c->prev->next = c->next;
  else if (g_reg == c) g_reg = c->next;
  if (c->next) c->next->prev = c->prev;
  std::free(c->buf);
  delete c;
}

// A FIFO, socket or terminal: a descriptor a read or write may wait on.
bool can_block(const struct stat& st, int fd) noexcept {
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd));
}

// Buffering as glibc chooses it for a file (filedoalloc.c): a terminal line-buffered, the
// size st_blksize when smaller than BUFSIZ. Its own buffer, freed with the cookie.
void set_buffering(FILE* fp, Cookie* c, const struct stat& st, bool unbuffered) noexcept {
  if (unbuffered) {
    setvbuf(fp, nullptr, _IONBF, 0);
    return;
  }
  size_t size = BUFSIZ;
  if (st.st_blksize > 0 && st.st_blksize < BUFSIZ) size = static_cast<size_t>(st.st_blksize);
  char* old = c->buf;
  c->buf = static_cast<char*>(std::malloc(size));
  const bool tty = S_ISCHR(st.st_mode) && isatty(c->fd);
  if (c->buf) setvbuf(fp, c->buf, tty ? _IOLBF : _IOFBF, size);
  else if (tty) setvbuf(fp, nullptr, _IOLBF, 0);
  std::free(old);
}

// The FILE for fd (mode "r", "w", "a", optionally "+"), or null with errno.
FILE* make(int fd, const char* mode, const struct stat& st, bool unbuffered) noexcept {
  auto* c = new (std::nothrow) Cookie;
  if (!c) {
    errno = ENOMEM;
    return nullptr;
  }
  c->fd = fd;
  FILE* fp = fopencookie(c, mode, cookie_io_functions_t{c_read, c_write, c_seek, c_close});
  if (!fp) {
    delete c;
    return nullptr;
  }
  c->fp = fp;
  fp->_fileno = fd;  // fileno(), and freopen(NULL, ...), as on glibc's own FILE
  set_buffering(fp, c, st, unbuffered);
  RINGLET_REAL(__fsetlocking)(fp, FSETLOCKING_BYCALLER);  // glibc never takes its futex lock on it
  fp->_flags2 |= kStdioOurs;
  count_on_fiber(Call::stdio_file);
  link(c);
  return fp;
}

// The access a mode asks for: 'r', 'w', 'a' and '+' in the next chars, as glibc reads it.
// false for a bad mode.
struct Mode {
  char kind;
  bool plus;
};
bool parse_mode(const char* mode, int scan, Mode& m) noexcept {
  if (!mode || (*mode != 'r' && *mode != 'w' && *mode != 'a')) return false;
  m.kind = *mode;
  m.plus = false;
  for (int i = 1; i < scan && mode[i]; ++i) {
    if (mode[i] == '+') {
      m.plus = true;
      break;
    }
  }
  return true;
}
const char* cookie_mode(const Mode& m) noexcept {
  static const char* const modes[] = {"r", "w", "a", "r+", "w+", "a+"};
  const int k = m.kind == 'r' ? 0 : m.kind == 'w' ? 1 : 2;
  return modes[k + (m.plus ? 3 : 0)];
}

bool probe_layout() noexcept {
  int dummy = 0;
  FILE* fp = fopencookie(&dummy, "r", cookie_io_functions_t{});
  if (!fp) return false;
  const bool ok = *cookie_slot(fp) == &dummy && fp->_fileno == -2 &&
                  (fp->_flags2 & kStdioOurs) == 0;
  fclose(fp);
  return ok;
}

void flush_at_exit() {
  // Before glibc's exit flush (which holds its list lock, see stdio_flush_ours).
  int r = 0;
  stdio_flush_ours(r);
}

void take_std_stream(int fd, FILE*& var, const char* mode, bool unbuffered) noexcept {
  struct stat st;
  if (fstat(fd, &st) != 0 || !can_block(st, fd)) return;
  // A constructor before ours read ahead from stdin: what it buffered stays with glibc's.
  if (fd == 0 && var->_IO_read_ptr < var->_IO_read_end) return;
  if (fd != 0) fflush(var);  // anything a constructor printed so far goes first
  // A constructor before ours may have set the stream's buffering: kept.
  constexpr int kUnbuffered = 2, kLineBuf = 0x200;
  const int was = var->_flags;
  FILE* fp = make(fd, mode, st, unbuffered || (was & kUnbuffered));
  if (!fp) return;
  if ((was & (kLineBuf | kUnbuffered)) == kLineBuf) setvbuf(fp, nullptr, _IOLBF, 0);
  var = fp;
}

// After the patch's own constructor (101): the groups are known.
__attribute__((constructor(102))) void init_stdio() {
  const char* v = std::getenv("RINGLET_STDIO");
  if (v && std::strcmp(v, "native") == 0) return;
  if (v && *v && std::strcmp(v, "patched") != 0)
    std::fprintf(stderr, "ringlet patch: RINGLET_STDIO='%s' is neither 'native' nor 'patched'; "
                 "taken as 'patched'\n", v);
  if (!(g_groups.load(std::memory_order_relaxed) & Socket)) return;
  const char* ver = gnu_get_libc_version();
  const bool same_glibc = std::strcmp(ver, "2.36") == 0;
  if (!same_glibc || !probe_layout()) {
    // The probe fails under a stdio that is not glibc's alone (a sanitizer's interceptors).
    std::fprintf(stderr, "ringlet patch: stdio: %s%s%s; stdio on sockets, pipes and terminals "
                 "stays glibc's (a read there blocks every thread of its OS thread). "
                 "RINGLET_STDIO=native says nothing.\n",
                 same_glibc ? "a FILE made here does not behave as glibc 2.36's did when its FILE "
                              "handling was checked (another library intercepts stdio?)"
                            : "glibc ",
                 same_glibc ? "" : ver,
                 same_glibc ? "" : " is not the one its FILE handling was checked against (2.36)");
    return;
  }
  g_stdio.ours_mask.store(kStdioOurs, std::memory_order_relaxed);
  std::atexit(flush_at_exit);
  FILE* const old_in = stdin;
  FILE* const old_out = stdout;
  FILE* const old_err = stderr;
  take_std_stream(0, stdin, "r", false);
  take_std_stream(1, stdout, "w", false);
  take_std_stream(2, stderr, "w", true);
  stdio_retarget_iostreams(old_in, old_out, old_err);
}

}  // namespace

Cookie* cookie_of(FILE* fp) noexcept { return static_cast<Cookie*>(*cookie_slot(fp)); }

void stdio_after_close(Cookie* c) noexcept {
  give_lock(c->lock);
  g_reg_mu.lock();
  c->fp = nullptr;
  free_if_done(c);
  g_reg_mu.unlock();
}

namespace {
// One pass over our FILEs, each flushed under its lock. One cookie at a time, pinned (kept
// linked) while its lock is awaited; new ones are linked at the head, so walking on from a
// pinned one never loops. True if the pass found nothing to do: no lock to wait for, no
// data to write, so no other thread ran during it.
bool flush_pass(int& result) noexcept {
  bool clean = true;
  g_reg_mu.lock();
  Cookie* c = g_reg;
  if (c) ++c->pins;
  g_reg_mu.unlock();
  while (c) {
    bool waited = false;
    take_lock(c->lock, false, &waited);
    if (waited) clean = false;
    FILE* fp = c->closed ? nullptr : c->fp;
    if (fp && fp->_IO_write_ptr > fp->_IO_write_base) {
      clean = false;
      if (RINGLET_REAL(fflush)(fp) == EOF) result = EOF;
    }
    give_lock(c->lock);
    g_reg_mu.lock();
    Cookie* next = c->next;
    if (next) ++next->pins;
    --c->pins;
    free_if_done(c);
    g_reg_mu.unlock();
    c = next;
  }
  return clean;
}
}  // namespace

void stdio_flush_ours(int& result) noexcept {
  // glibc's own flush of every FILE (fflush(NULL)'s pass, exit's) holds its list lock, a
  // futex owned by THREAD_SELF: if it found one of ours with data to write and parked in the
  // write, another fiber's fopen or fclose would wait for that lock in the kernel, and the
  // parked one could never run again. So ours are flushed here, under their own locks, until
  // a pass finds nothing to do and so let no other thread run: glibc's pass, right after,
  // finds them empty (a write parked inside one hides its data, c_write).
  for (int i = 0; i < 100 && !flush_pass(result); ++i) {
  }
}

void stdio_forget_after_fork() noexcept {
  // fork keeps its caller only: a lock held or waited for by another thread is free in the
  // child, as glibc's fork leaves the child's FILE locks.
  const void* me = stdio_me();
  new (&g_reg_mu) ringlet::detail::SpinLock;
  for (Cookie* c = g_reg; c; c = c->next) {
    c->pins = 0;
    new (&c->lock.mu) ringlet::detail::SpinLock;
    new (&c->lock.waiters) ringlet::detail::WaitList;
    if (c->lock.owner != me) {
      c->lock.owner = nullptr;
      c->lock.depth = 0;
    }
  }
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK FILE* fdopen(int fd, const char* mode) {
  if (RINGLET_LIKELY(!g_stdio.ours_mask.load(std::memory_order_relaxed)))
    return RINGLET_REAL(fdopen)(fd, mode);
  struct stat st;
  Mode m;
  if (fstat(fd, &st) != 0 || !can_block(st, fd) || !parse_mode(mode, 5, m)) {
    count_passed(Call::stdio_file);
    return RINGLET_REAL(fdopen)(fd, mode);  // glibc's FILE, and its errors (EBADF, EINVAL)
  }
  // glibc's checks (iofdopen.c): the mode against the descriptor's access, O_APPEND for "a".
  const int fl = fcntl(fd, F_GETFL);
  if (fl == -1) return nullptr;
  const int acc = fl & O_ACCMODE;
  if ((acc == O_RDONLY && (m.kind != 'r' || m.plus)) || (acc == O_WRONLY && (m.kind == 'r' || m.plus))) {
    errno = EINVAL;
    return nullptr;
  }
  if (m.kind == 'a' && !(fl & O_APPEND) && fcntl(fd, F_SETFL, fl | O_APPEND) == -1) return nullptr;
  return make(fd, cookie_mode(m), st, false);
}

namespace {
// fopen of a FIFO, socket or terminal: opened here with the patched open (a FIFO's open may
// wait for its other end), then our FILE. Anything else, or a mode with ",ccs=", is glibc's.
FILE* open_file(const char* path, const char* mode, FILE* (*real)(const char*, const char*)) {
  struct stat st;
  Mode m;
  if (!path || stat(path, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode)) ||
      !parse_mode(mode, 7, m) || std::strchr(mode, ',')) {
    count_passed(Call::stdio_file);
    return real(path, mode);
  }
  int flags = m.plus ? O_RDWR : m.kind == 'r' ? O_RDONLY : O_WRONLY;
  if (m.kind == 'w') flags |= O_CREAT | O_TRUNC;
  if (m.kind == 'a') flags |= O_CREAT | O_APPEND;
  for (int i = 1; i < 7 && mode[i]; ++i) {
    if (mode[i] == 'x') flags |= O_EXCL;
    if (mode[i] == 'e') flags |= O_CLOEXEC;
  }
  int fd;
  {
    CancelOff no_cancel;
    fd = ::open(path, flags, 0666);
  }
  if (fd < 0) return nullptr;
  FILE* fp;
  if (fstat(fd, &st) == 0 && can_block(st, fd)) {
    fp = make(fd, cookie_mode(m), st, false);
  } else {
    fp = RINGLET_REAL(fdopen)(fd, cookie_mode(m));  // /dev/null and the like: glibc's
  }
  if (!fp) {
    const int e = errno;
    RINGLET_REAL(close)(fd);
    errno = e;
  }
  return fp;
}
}  // namespace

RINGLET_HOOK FILE* fopen(const char* path, const char* mode) {
  if (RINGLET_LIKELY(!g_stdio.ours_mask.load(std::memory_order_relaxed)))
    return RINGLET_REAL(fopen)(path, mode);
  return open_file(path, mode, RINGLET_REAL(fopen));
}

RINGLET_HOOK FILE* fopen64(const char* path, const char* mode) {
  if (RINGLET_LIKELY(!g_stdio.ours_mask.load(std::memory_order_relaxed)))
    return RINGLET_REAL(fopen64)(path, mode);
  return open_file(path, mode, RINGLET_REAL(fopen64));
}

namespace {
// freopen of one of ours, under its lock. glibc's freopen cannot take a cookie FILE (it
// would write through the cookie FILE's absent wide data), so as glibc does it: flush, open
// the new file, put it on the old descriptor's number (dup3), and start the FILE afresh on
// it. The FILE stays ours (its reads and writes the patched calls), buffered as glibc would
// buffer the new file.
FILE* reopen_ours(const char* path, const char* mode, FILE* fp, Cookie* c) {
  RINGLET_REAL(fflush)(fp);  // failure ignored, as glibc's
  Mode m;
  if (!parse_mode(mode, 7, m)) {
    errno = EINVAL;
    return nullptr;
  }
  char self[40];
  if (!path) {
    std::snprintf(self, sizeof self, "/proc/self/fd/%d", c->fd);
    path = self;
  }
  int flags = m.plus ? O_RDWR : m.kind == 'r' ? O_RDONLY : O_WRONLY;
  if (m.kind == 'w') flags |= O_CREAT | O_TRUNC;
  if (m.kind == 'a') flags |= O_CREAT | O_APPEND;
  bool cloexec = false;
  for (int i = 1; i < 7 && mode[i]; ++i) {
    if (mode[i] == 'x') flags |= O_EXCL;
    if (mode[i] == 'e') cloexec = true;
  }
  int nfd;
  {
    CancelOff no_cancel;
    nfd = ::open(path, flags | (cloexec ? O_CLOEXEC : 0), 0666);
  }
  if (nfd < 0) {
    // As glibc: on failure the stream's descriptor is closed (the FILE stays, unusable).
    const int e = errno;
    if (c->fd >= 0) ::close(c->fd);
    c->fd = -1;
    errno = e;
    return nullptr;
  }
  if (c->fd < 0) {
    c->fd = nfd;
  } else if (nfd != c->fd) {
    if (::dup3(nfd, c->fd, cloexec ? O_CLOEXEC : 0) == -1) {
      const int e = errno;
      ::close(nfd);
      errno = e;
      return nullptr;
    }
    ::close(nfd);
  }
  // The FILE afresh: no buffer, no pending data, no error or EOF, the new access mode.
  constexpr int kNoReads = 4, kNoWrites = 8, kAppending = 0x1000, kMagicMask = 0xFFFF0000;
  constexpr int kLinked = 0x80, kIsFilebuf = 0x2000, kUserLock = 0x8000;
  int rw = m.kind == 'r' ? kNoWrites : m.kind == 'w' ? kNoReads : kNoReads | kAppending;
  if (m.plus) rw &= kAppending;
  constexpr int kUserBuf = 1;
  // What glibc's close would free: a buffer it allocated, the ungetc backup area.
  if (fp->_IO_buf_base && !(fp->_flags & kUserBuf)) std::free(fp->_IO_buf_base);
  constexpr int kInBackup = 0x100;  // then the read pointers are the backup area's
  if (char* backup = (fp->_flags & kInBackup) ? fp->_IO_read_base : fp->_IO_save_base)
    std::free(backup);
  fp->_IO_save_base = fp->_IO_backup_base = fp->_IO_save_end = nullptr;
  fp->_flags = (fp->_flags & (kMagicMask | kLinked | kUserLock)) | kIsFilebuf | rw;
  fp->_IO_buf_base = fp->_IO_buf_end = nullptr;
  fp->_IO_read_base = fp->_IO_read_ptr = fp->_IO_read_end = nullptr;
  fp->_IO_write_base = fp->_IO_write_ptr = fp->_IO_write_end = nullptr;
  fp->_old_offset = -1;
  fp->_offset = -1;
  fp->_fileno = c->fd;
  if (m.kind == 'a') ::lseek64(c->fd, 0, SEEK_END);  // as glibc's fopen "a": ftell says the end
  struct stat st;
  if (fstat(c->fd, &st) == 0) set_buffering(fp, c, st, false);
  return fp;
}
}  // namespace

RINGLET_HOOK FILE* freopen(const char* path, const char* mode, FILE* fp) {
  if (RINGLET_LIKELY(stdio_plain(fp))) return RINGLET_REAL(freopen)(path, mode, fp);
  if (!stdio_ours(fp)) {
    StdioGuard g(fp);
    return RINGLET_REAL(freopen)(path, mode, fp);
  }
  Cookie* c = cookie_of(fp);
  take_lock(c->lock, false);
  FILE* r = reopen_ours(path, mode, fp, c);
  const int e = errno;
  give_lock(c->lock);
  errno = e;
  return r;
}

RINGLET_HOOK FILE* freopen64(const char* path, const char* mode, FILE* fp) {
  return freopen(path, mode, fp);
}

RINGLET_HOOK int fclose(FILE* fp) {
  // glibc's own streams close their descriptor inside libc, unseen by the close hook.
  if (RINGLET_LIKELY(stdio_plain(fp))) {
    if (fp) fd_closing(fileno_unlocked(fp));
    return RINGLET_REAL(fclose)(fp);
  }
  if (!stdio_ours(fp)) {
    if (fp) fd_closing(fileno_unlocked(fp));
    const bool held = stdio_enter(fp);
    const int r = RINGLET_REAL(fclose)(fp);
    if (held) stdio_leave_foreign(fp);  // fp is gone: it only names the lock
    return r;
  }
  // A stream of the patch's popen: glibc's fclose of a popen stream is its pclose (it waits
  // for the child and answers its status), and so is this one.
  if (RINGLET_UNLIKELY(is_popen_stream(fp))) return pclose(fp);
  Cookie* c = cookie_of(fp);
  take_lock(c->lock, false);
  const int r = RINGLET_REAL(fclose)(fp);
  const int e = errno;
  stdio_after_close(c);  // fp is gone
  errno = e;
  return r;
}
