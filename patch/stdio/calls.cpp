// The stdio entry points a program calls, each taking the FILE's lock of ours around
// glibc's own call when the FILE is ours (a socket, pipe or terminal: stdio.hpp) or when a
// fiber thread holds a flockfile region somewhere; otherwise glibc's call at once (one
// load of the FILE's _flags2 and one of a global).
//
// The I/O itself needs no hook: on our FILEs glibc's buffering code reads and writes
// through the cookie functions, which call the patched read/write. So the _unlocked forms
// and the getc/putc macros' __uflow/__overflow, which take no lock natively either, are
// glibc's own and park all the same.
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>

#include <atomic>

#include "stdio.hpp"

extern "C" {
int __fprintf_chk(FILE*, int, const char*, ...);
int __printf_chk(int, const char*, ...);
int __vfprintf_chk(FILE*, int, const char*, va_list);
int __vprintf_chk(int, const char*, va_list);
int __isoc99_scanf(const char*, ...);
int __isoc99_fscanf(FILE*, const char*, ...);
int __isoc99_vscanf(const char*, va_list);
int __isoc99_vfscanf(FILE*, const char*, va_list);
char* __fgets_chk(char*, size_t, int, FILE*);
size_t __fread_chk(void*, size_t, size_t, size_t, FILE*);
ssize_t __getdelim(char**, size_t*, int, FILE*);
int _IO_getc(FILE*);
int _IO_putc(int, FILE*);
}

using namespace ringlet::patch::detail;

// A hook whose FILE is `fpexpr`: glibc's call, under the FILE's lock of ours if need be
// (out of line: the common path is two loads, a test and a tail call).
#define STDIO_HOOK(ret, name, params, fpexpr, args)                        \
  static RINGLET_SLOW ret ringlet_locked_##name params {                   \
    StdioGuard g_(fpexpr);                                                 \
    return RINGLET_REAL(name) args;                                        \
  }                                                                        \
  RINGLET_HOOK ret name params {                                           \
    if (RINGLET_LIKELY(stdio_plain(fpexpr))) return RINGLET_REAL(name) args; \
    return ringlet_locked_##name args;                                     \
  }

// A variadic hook forwarding to glibc's v-form `vname`.
#define STDIO_VHOOK(name, params, last, fpexpr, vname, vargs) \
  RINGLET_HOOK int name params {                              \
    va_list ap;                                               \
    va_start(ap, last);                                       \
    FILE* fp_ = fpexpr;                                       \
    int r;                                                    \
    if (RINGLET_LIKELY(stdio_plain(fp_))) {                   \
      r = RINGLET_REAL(vname) vargs;                          \
    } else {                                                  \
      StdioGuard g_(fp_);                                     \
      r = RINGLET_REAL(vname) vargs;                          \
    }                                                         \
    va_end(ap);                                               \
    return r;                                                 \
  }

#undef getc
#undef putc
#undef getchar
#undef putchar

// --- reads -------------------------------------------------------------------------------
STDIO_HOOK(char*, fgets, (char* s, int n, FILE* fp), fp, (s, n, fp))
STDIO_HOOK(char*, __fgets_chk, (char* s, size_t size, int n, FILE* fp), fp, (s, size, n, fp))
STDIO_HOOK(ssize_t, getline, (char** l, size_t* n, FILE* fp), fp, (l, n, fp))
STDIO_HOOK(ssize_t, getdelim, (char** l, size_t* n, int d, FILE* fp), fp, (l, n, d, fp))
STDIO_HOOK(ssize_t, __getdelim, (char** l, size_t* n, int d, FILE* fp), fp, (l, n, d, fp))
STDIO_HOOK(int, fgetc, (FILE* fp), fp, (fp))
STDIO_HOOK(int, getc, (FILE* fp), fp, (fp))
STDIO_HOOK(int, _IO_getc, (FILE* fp), fp, (fp))
STDIO_HOOK(int, getchar, (void), stdin, ())
STDIO_HOOK(int, getw, (FILE* fp), fp, (fp))
STDIO_HOOK(size_t, fread, (void* p, size_t size, size_t n, FILE* fp), fp, (p, size, n, fp))
STDIO_HOOK(size_t, __fread_chk, (void* p, size_t len, size_t size, size_t n, FILE* fp), fp,
           (p, len, size, n, fp))
STDIO_HOOK(int, ungetc, (int c, FILE* fp), fp, (c, fp))
STDIO_VHOOK(__isoc99_scanf, (const char* f, ...), f, stdin, __isoc99_vfscanf, (fp_, f, ap))
STDIO_VHOOK(__isoc99_fscanf, (FILE* fp, const char* f, ...), f, fp, __isoc99_vfscanf, (fp_, f, ap))
// The pre-C99 scanf family by its own symbol names (stdio.h renames scanf to
// __isoc99_scanf in this translation unit).
namespace {
using VfscanfFn = int (*)(FILE*, const char*, va_list);
VfscanfFn real_vfscanf_old() noexcept {
  static std::atomic<void*> p{nullptr};
  void* v = p.load(std::memory_order_relaxed);
  if (!v) p.store(v = resolve_next("vfscanf"), std::memory_order_relaxed);
  return reinterpret_cast<VfscanfFn>(v);
}
int locked_vfscanf_old(FILE* fp, const char* f, va_list ap) noexcept {
  if (RINGLET_LIKELY(stdio_plain(fp))) return real_vfscanf_old()(fp, f, ap);
  StdioGuard g(fp);
  return real_vfscanf_old()(fp, f, ap);
}
}  // namespace
extern "C" __attribute__((visibility("default"))) int ringlet_scanf_old(const char* f, ...) __asm__("scanf");
extern "C" __attribute__((visibility("default"))) int ringlet_fscanf_old(FILE* fp, const char* f, ...) __asm__("fscanf");
extern "C" __attribute__((visibility("default"))) int ringlet_vscanf_old2(const char* f, va_list ap) __asm__("vscanf");
extern "C" __attribute__((visibility("default"))) int ringlet_vfscanf_old2(FILE* fp, const char* f, va_list ap) __asm__("vfscanf");
int ringlet_scanf_old(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  const int r = locked_vfscanf_old(stdin, f, ap);
  va_end(ap);
  return r;
}
int ringlet_fscanf_old(FILE* fp, const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  const int r = locked_vfscanf_old(fp, f, ap);
  va_end(ap);
  return r;
}
int ringlet_vscanf_old2(const char* f, va_list ap) { return locked_vfscanf_old(stdin, f, ap); }
int ringlet_vfscanf_old2(FILE* fp, const char* f, va_list ap) { return locked_vfscanf_old(fp, f, ap); }
STDIO_HOOK(int, __isoc99_vscanf, (const char* f, va_list ap), stdin, (f, ap))
STDIO_HOOK(int, __isoc99_vfscanf, (FILE* fp, const char* f, va_list ap), fp, (fp, f, ap))

// --- writes ------------------------------------------------------------------------------
STDIO_HOOK(int, fputs, (const char* s, FILE* fp), fp, (s, fp))
STDIO_HOOK(int, puts, (const char* s), stdout, (s))
STDIO_HOOK(int, fputc, (int c, FILE* fp), fp, (c, fp))
STDIO_HOOK(int, putc, (int c, FILE* fp), fp, (c, fp))
STDIO_HOOK(int, _IO_putc, (int c, FILE* fp), fp, (c, fp))
STDIO_HOOK(int, putchar, (int c), stdout, (c))
STDIO_HOOK(int, putw, (int w, FILE* fp), fp, (w, fp))
STDIO_HOOK(size_t, fwrite, (const void* p, size_t size, size_t n, FILE* fp), fp, (p, size, n, fp))
STDIO_HOOK(void, perror, (const char* s), stderr, (s))
STDIO_VHOOK(printf, (const char* f, ...), f, stdout, vfprintf, (fp_, f, ap))
STDIO_VHOOK(fprintf, (FILE* fp, const char* f, ...), f, fp, vfprintf, (fp_, f, ap))
STDIO_VHOOK(__printf_chk, (int flag, const char* f, ...), f, stdout, __vfprintf_chk, (fp_, flag, f, ap))
STDIO_VHOOK(__fprintf_chk, (FILE* fp, int flag, const char* f, ...), f, fp, __vfprintf_chk,
            (fp_, flag, f, ap))
STDIO_HOOK(int, vprintf, (const char* f, va_list ap), stdout, (f, ap))
STDIO_HOOK(int, vfprintf, (FILE* fp, const char* f, va_list ap), fp, (fp, f, ap))
STDIO_HOOK(int, __vprintf_chk, (int flag, const char* f, va_list ap), stdout, (flag, f, ap))
STDIO_HOOK(int, __vfprintf_chk, (FILE* fp, int flag, const char* f, va_list ap), fp, (fp, flag, f, ap))

RINGLET_HOOK int fflush(FILE* fp) {
  if (fp) {
    if (RINGLET_LIKELY(stdio_plain(fp))) return RINGLET_REAL(fflush)(fp);
    StdioGuard g(fp);
    return RINGLET_REAL(fflush)(fp);
  }
  int r = 0;
  if (g_stdio.ours_mask.load(std::memory_order_relaxed)) stdio_flush_ours(r);
  // glibc's pass over every FILE: ours are empty by now (it takes no lock on them).
  if (RINGLET_REAL(fflush)(nullptr) == EOF) r = EOF;
  return r;
}

// --- positions, buffering, state ---------------------------------------------------------
STDIO_HOOK(int, fseek, (FILE* fp, long off, int whence), fp, (fp, off, whence))
STDIO_HOOK(int, fseeko, (FILE* fp, off_t off, int whence), fp, (fp, off, whence))
STDIO_HOOK(int, fseeko64, (FILE* fp, off64_t off, int whence), fp, (fp, off, whence))
STDIO_HOOK(long, ftell, (FILE* fp), fp, (fp))
STDIO_HOOK(off_t, ftello, (FILE* fp), fp, (fp))
STDIO_HOOK(off64_t, ftello64, (FILE* fp), fp, (fp))
STDIO_HOOK(int, fgetpos, (FILE* fp, fpos_t* p), fp, (fp, p))
STDIO_HOOK(int, fgetpos64, (FILE* fp, fpos64_t* p), fp, (fp, p))
STDIO_HOOK(int, fsetpos, (FILE* fp, const fpos_t* p), fp, (fp, p))
STDIO_HOOK(int, fsetpos64, (FILE* fp, const fpos64_t* p), fp, (fp, p))
STDIO_HOOK(void, rewind, (FILE* fp), fp, (fp))
STDIO_HOOK(int, setvbuf, (FILE* fp, char* b, int mode, size_t size), fp, (fp, b, mode, size))
STDIO_HOOK(void, setbuf, (FILE* fp, char* b), fp, (fp, b))
STDIO_HOOK(void, setbuffer, (FILE* fp, char* b, size_t size), fp, (fp, b, size))
STDIO_HOOK(void, setlinebuf, (FILE* fp), fp, (fp))
STDIO_HOOK(int, feof, (FILE* fp), fp, (fp))
STDIO_HOOK(int, ferror, (FILE* fp), fp, (fp))
STDIO_HOOK(void, clearerr, (FILE* fp), fp, (fp))
STDIO_HOOK(void, __fpurge, (FILE* fp), fp, (fp))

// On our FILEs glibc's own locking stays off (_IO_USER_LOCK) whatever the program asks: it
// is shown the state it set, and our lock is taken either way (it costs a caller that does
// its own locking an uncontended lock per call, no more).
RINGLET_HOOK int __fsetlocking(FILE* fp, int type) {
  if (RINGLET_LIKELY(!stdio_ours(fp))) return RINGLET_REAL(__fsetlocking)(fp, type);
  Cookie* c = cookie_of(fp);
  const int old = c->locking;
  if (type == FSETLOCKING_INTERNAL || type == FSETLOCKING_BYCALLER) c->locking = type;
  return old;
}
