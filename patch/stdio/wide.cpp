// Wide-character stdio on the patch's FILEs (stdio.hpp). glibc gives a fopencookie FILE no
// wide side: it is born byte-oriented, fwide answers -1 and every wide call on it fails. A
// program that prints with wprintf to a pipe or a terminal would lose its output without a
// word. So on the patch's FILEs the wide calls are made here, as glibc's wide streams make
// them: characters converted to the locale's multibyte sequences (wcrtomb; glibc converts
// with the codeset of LC_CTYPE) and written through the byte side, read back the same way
// (mbrtowc), each FILE with its own conversion state. The orientation is kept as glibc
// keeps it: the first byte or wide call fixes it, fwide answers it, and a wide call on a
// byte-oriented FILE fails. (A byte call on a wide-oriented FILE is not refused here, where
// glibc refuses it.) The wide scanf family is not offered on these FILEs: said once on
// stderr, and it fails as on a byte-oriented FILE.
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>
#include <wchar.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "stdio.hpp"
#include "../thread/cancel.hpp"

extern "C" {
int __fwprintf_chk(FILE*, int, const wchar_t*, ...);
int __wprintf_chk(int, const wchar_t*, ...);
int __vfwprintf_chk(FILE*, int, const wchar_t*, va_list);
int __vwprintf_chk(int, const wchar_t*, va_list);
}

using namespace ringlet::patch::detail;

namespace {

constexpr int kErrSeen = 0x20;  // glibc's _IO_ERR_SEEN

// Fix the orientation on the first call that needs it: bytes if any went through the FILE
// (its cookie read or wrote, or its buffer holds some), else `want`.
int orient(Cookie* c, FILE* fp, int want) noexcept {
  if (c->orient == 0 && want != 0) {
    const bool bytes = c->byte_io || fp->_IO_write_ptr > fp->_IO_write_base ||
                       fp->_IO_read_ptr < fp->_IO_read_end;
    c->orient = bytes ? -1 : (want > 0 ? 1 : -1);
  }
  return c->orient;
}

bool wide_ok(Cookie* c, FILE* fp) noexcept { return orient(c, fp, 1) == 1; }

void set_error(FILE* fp) noexcept { fp->_flags |= kErrSeen; }

// Write the multibyte form of n wide characters; false (errno set, the FILE's error flag
// set) if one cannot be converted or the write fails.
bool put_wide(Cookie* c, FILE* fp, const wchar_t* ws, size_t n) noexcept {
  char buf[512];
  size_t used = 0;
  for (size_t i = 0; i < n; ++i) {
    if (used + MB_LEN_MAX > sizeof buf) {
      if (RINGLET_REAL(fwrite)(buf, 1, used, fp) != used) return false;
      used = 0;
    }
    const size_t k = wcrtomb(buf + used, ws[i], &c->out_state);
    if (k == static_cast<size_t>(-1)) {
      errno = EILSEQ;
      set_error(fp);
      std::memset(&c->out_state, 0, sizeof c->out_state);
      return false;
    }
    used += k;
  }
  return used == 0 || RINGLET_REAL(fwrite)(buf, 1, used, fp) == used;
}

// One wide character read from the byte side; WEOF at the end or on an error (EILSEQ for a
// sequence that is not a character, or that the end cuts short).
wint_t get_wide(Cookie* c, FILE* fp) noexcept {
  bool partial = false;
  for (;;) {
    const int ch = RINGLET_REAL(fgetc)(fp);
    if (ch == EOF) {
      if (partial && !RINGLET_REAL(ferror)(fp)) {
        errno = EILSEQ;
        set_error(fp);
        std::memset(&c->in_state, 0, sizeof c->in_state);
      }
      return WEOF;
    }
    const char b = static_cast<char>(ch);
    wchar_t wc = 0;
    const size_t k = mbrtowc(&wc, &b, 1, &c->in_state);
    if (k == static_cast<size_t>(-2)) {
      partial = true;
      continue;
    }
    if (k == static_cast<size_t>(-1)) {
      errno = EILSEQ;
      set_error(fp);
      std::memset(&c->in_state, 0, sizeof c->in_state);
      return WEOF;
    }
    return static_cast<wint_t>(wc);
  }
}

int vprint_wide(FILE* fp, const wchar_t* fmt, va_list ap) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (!wide_ok(c, fp)) return -1;
  wchar_t small[256];
  wchar_t* buf = small;
  size_t cap = sizeof small / sizeof small[0];
  int n;
  for (;;) {
    va_list copy;
    va_copy(copy, ap);
    n = vswprintf(buf, cap, fmt, copy);
    va_end(copy);
    if (n >= 0 || cap >= (std::size_t{1} << 24)) break;
    cap *= 4;  // too small (vswprintf answers -1): a larger one
    if (buf != small) std::free(buf);
    buf = static_cast<wchar_t*>(std::malloc(cap * sizeof(wchar_t)));
    if (!buf) {
      errno = ENOMEM;
      return -1;
    }
  }
  if (n >= 0 && !put_wide(c, fp, buf, static_cast<size_t>(n))) n = -1;
  if (buf != small) std::free(buf);
  return n;
}

wint_t put_wc(wchar_t wc, FILE* fp) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (!wide_ok(c, fp)) return WEOF;
  return put_wide(c, fp, &wc, 1) ? static_cast<wint_t>(wc) : WEOF;
}

int put_ws(const wchar_t* ws, FILE* fp) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (!wide_ok(c, fp)) return -1;
  return put_wide(c, fp, ws, wcslen(ws)) ? 1 : -1;
}

wint_t get_wc(FILE* fp) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (!wide_ok(c, fp)) return WEOF;
  return get_wide(c, fp);
}

wchar_t* get_ws(wchar_t* ws, int n, FILE* fp) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (n <= 0 || !wide_ok(c, fp)) return nullptr;
  int i = 0;
  while (i < n - 1) {
    const wint_t wc = get_wide(c, fp);
    if (wc == WEOF) {
      if (i == 0 || RINGLET_REAL(ferror)(fp)) return nullptr;
      break;
    }
    ws[i++] = static_cast<wchar_t>(wc);
    if (wc == L'\n') break;
  }
  ws[i] = L'\0';
  return ws;
}

wint_t unget_wc(wint_t wc, FILE* fp) noexcept {
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  if (wc == WEOF || !wide_ok(c, fp)) return WEOF;
  char mb[MB_LEN_MAX];
  mbstate_t st{};
  const size_t k = wcrtomb(mb, static_cast<wchar_t>(wc), &st);
  if (k == static_cast<size_t>(-1)) return WEOF;
  for (size_t i = k; i > 0; --i)
    if (RINGLET_REAL(ungetc)(static_cast<unsigned char>(mb[i - 1]), fp) == EOF) return WEOF;
  return wc;
}

void say_no_wide_scanf() noexcept {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  static const char msg[] =
      "ringlet patch: wide-character scanf (fwscanf, wscanf) on a FILE on a pipe, socket or "
      "terminal is not supported by the patch's stdio: it fails (EOF). RINGLET_STDIO=native "
      "leaves stdio to glibc (then such reads block the OS thread).\n";
  CancelOff no_cancel;
  (void)!::write(2, msg, sizeof msg - 1);
}

}  // namespace

// A hook on a FILE: glibc's call unless the FILE is ours (then ours), under the FILE's lock
// of ours when a flockfile region is held somewhere.
#define WIDE_HOOK(ret, name, params, fpexpr, args, ours)              \
  RINGLET_HOOK ret name params {                                      \
    FILE* fp_ = fpexpr;                                               \
    if (RINGLET_LIKELY(stdio_plain(fp_))) return RINGLET_REAL(name) args; \
    if (stdio_ours(fp_)) return ours;                                 \
    StdioGuard g_(fp_);                                               \
    return RINGLET_REAL(name) args;                                   \
  }

WIDE_HOOK(wint_t, fputwc, (wchar_t wc, FILE* fp), fp, (wc, fp), put_wc(wc, fp_))
WIDE_HOOK(wint_t, putwc, (wchar_t wc, FILE* fp), fp, (wc, fp), put_wc(wc, fp_))
WIDE_HOOK(wint_t, putwchar, (wchar_t wc), stdout, (wc), put_wc(wc, fp_))
WIDE_HOOK(wint_t, fputwc_unlocked, (wchar_t wc, FILE* fp), fp, (wc, fp), put_wc(wc, fp_))
WIDE_HOOK(wint_t, putwc_unlocked, (wchar_t wc, FILE* fp), fp, (wc, fp), put_wc(wc, fp_))
WIDE_HOOK(wint_t, putwchar_unlocked, (wchar_t wc), stdout, (wc), put_wc(wc, fp_))
WIDE_HOOK(int, fputws, (const wchar_t* ws, FILE* fp), fp, (ws, fp), put_ws(ws, fp_))
WIDE_HOOK(int, fputws_unlocked, (const wchar_t* ws, FILE* fp), fp, (ws, fp), put_ws(ws, fp_))
WIDE_HOOK(wint_t, fgetwc, (FILE* fp), fp, (fp), get_wc(fp_))
WIDE_HOOK(wint_t, getwc, (FILE* fp), fp, (fp), get_wc(fp_))
WIDE_HOOK(wint_t, getwchar, (void), stdin, (), get_wc(fp_))
WIDE_HOOK(wint_t, fgetwc_unlocked, (FILE* fp), fp, (fp), get_wc(fp_))
WIDE_HOOK(wint_t, getwc_unlocked, (FILE* fp), fp, (fp), get_wc(fp_))
WIDE_HOOK(wint_t, getwchar_unlocked, (void), stdin, (), get_wc(fp_))
WIDE_HOOK(wchar_t*, fgetws, (wchar_t* ws, int n, FILE* fp), fp, (ws, n, fp), get_ws(ws, n, fp_))
WIDE_HOOK(wchar_t*, fgetws_unlocked, (wchar_t* ws, int n, FILE* fp), fp, (ws, n, fp),
          get_ws(ws, n, fp_))
WIDE_HOOK(wint_t, ungetwc, (wint_t wc, FILE* fp), fp, (wc, fp), unget_wc(wc, fp_))

RINGLET_HOOK int fwide(FILE* fp, int mode) {
  if (RINGLET_LIKELY(stdio_plain(fp))) return RINGLET_REAL(fwide)(fp, mode);
  if (!stdio_ours(fp)) {
    StdioGuard g(fp);
    return RINGLET_REAL(fwide)(fp, mode);
  }
  StdioGuard g(fp);
  Cookie* c = cookie_of(fp);
  const int o = orient(c, fp, mode);
  return o > 0 ? 1 : (o < 0 ? -1 : 0);
}

// The printf family: glibc's v-form, or ours on our FILEs.
#define WIDE_VPRINT(name, params, last, fpexpr, vcall)   \
  RINGLET_HOOK int name params {                         \
    va_list ap;                                          \
    va_start(ap, last);                                  \
    FILE* fp_ = fpexpr;                                  \
    int r;                                               \
    if (RINGLET_LIKELY(stdio_plain(fp_))) {              \
      r = vcall;                                         \
    } else if (stdio_ours(fp_)) {                        \
      r = vprint_wide(fp_, fmt, ap);                     \
    } else {                                             \
      StdioGuard g_(fp_);                                \
      r = vcall;                                         \
    }                                                    \
    va_end(ap);                                          \
    return r;                                            \
  }

WIDE_VPRINT(fwprintf, (FILE* fp, const wchar_t* fmt, ...), fmt, fp,
            RINGLET_REAL(vfwprintf)(fp_, fmt, ap))
WIDE_VPRINT(wprintf, (const wchar_t* fmt, ...), fmt, stdout, RINGLET_REAL(vfwprintf)(fp_, fmt, ap))
WIDE_VPRINT(__fwprintf_chk, (FILE* fp, int flag, const wchar_t* fmt, ...), fmt, fp,
            RINGLET_REAL(__vfwprintf_chk)(fp_, flag, fmt, ap))
WIDE_VPRINT(__wprintf_chk, (int flag, const wchar_t* fmt, ...), fmt, stdout,
            RINGLET_REAL(__vfwprintf_chk)(fp_, flag, fmt, ap))

#define WIDE_VPRINT_V(name, params, fpexpr, vcall)   \
  RINGLET_HOOK int name params {                     \
    FILE* fp_ = fpexpr;                              \
    if (RINGLET_LIKELY(stdio_plain(fp_))) return vcall; \
    if (stdio_ours(fp_)) return vprint_wide(fp_, fmt, ap); \
    StdioGuard g_(fp_);                              \
    return vcall;                                    \
  }

WIDE_VPRINT_V(vfwprintf, (FILE* fp, const wchar_t* fmt, va_list ap), fp,
              RINGLET_REAL(vfwprintf)(fp_, fmt, ap))
WIDE_VPRINT_V(vwprintf, (const wchar_t* fmt, va_list ap), stdout,
              RINGLET_REAL(vfwprintf)(fp_, fmt, ap))
WIDE_VPRINT_V(__vfwprintf_chk, (FILE* fp, int flag, const wchar_t* fmt, va_list ap), fp,
              RINGLET_REAL(__vfwprintf_chk)(fp_, flag, fmt, ap))
WIDE_VPRINT_V(__vwprintf_chk, (int flag, const wchar_t* fmt, va_list ap), stdout,
              RINGLET_REAL(__vfwprintf_chk)(fp_, flag, fmt, ap))

// The wide scanf family: glibc's, and on our FILEs a failure said once. wchar.h renames
// fwscanf to __isoc99_fwscanf in this translation unit, so the pre-C99 names (which C
// programs built with _GNU_SOURCE call) are defined by their symbol names.
namespace {
using VfwscanfFn = int (*)(FILE*, const wchar_t*, va_list);
VfwscanfFn real_vfwscanf(bool old) noexcept {
  static std::atomic<void*> p[2] = {nullptr, nullptr};
  void* v = p[old].load(std::memory_order_relaxed);
  if (!v) p[old].store(v = resolve_next(old ? "vfwscanf" : "__isoc99_vfwscanf"), std::memory_order_relaxed);
  return reinterpret_cast<VfwscanfFn>(v);
}
int scan_wide(FILE* fp, const wchar_t* fmt, va_list ap, bool old) noexcept {
  if (RINGLET_LIKELY(stdio_plain(fp))) return real_vfwscanf(old)(fp, fmt, ap);
  if (stdio_ours(fp)) {
    say_no_wide_scanf();
    return EOF;
  }
  StdioGuard g(fp);
  return real_vfwscanf(old)(fp, fmt, ap);
}
}  // namespace

#define WIDE_SCAN(cname, asmname, old)                                                      \
  extern "C" __attribute__((visibility("default"))) int cname(FILE* fp, const wchar_t* fmt, \
                                                              ...) __asm__(asmname);        \
  int cname(FILE* fp, const wchar_t* fmt, ...) {                                            \
    va_list ap;                                                                             \
    va_start(ap, fmt);                                                                      \
    const int r = scan_wide(fp, fmt, ap, old);                                              \
    va_end(ap);                                                                             \
    return r;                                                                               \
  }
#define WIDE_SCAN_STDIN(cname, asmname, old)                                                   \
  extern "C" __attribute__((visibility("default"))) int cname(const wchar_t* fmt, ...) __asm__( \
      asmname);                                                                                \
  int cname(const wchar_t* fmt, ...) {                                                         \
    va_list ap;                                                                                \
    va_start(ap, fmt);                                                                         \
    const int r = scan_wide(stdin, fmt, ap, old);                                              \
    va_end(ap);                                                                                \
    return r;                                                                                  \
  }
#define WIDE_VSCAN(cname, asmname, old)                                                     \
  extern "C" __attribute__((visibility("default"))) int cname(FILE* fp, const wchar_t* fmt, \
                                                              va_list ap) __asm__(asmname); \
  int cname(FILE* fp, const wchar_t* fmt, va_list ap) { return scan_wide(fp, fmt, ap, old); }
#define WIDE_VSCAN_STDIN(cname, asmname, old)                                                 \
  extern "C" __attribute__((visibility("default"))) int cname(const wchar_t* fmt, va_list ap) \
      __asm__(asmname);                                                                       \
  int cname(const wchar_t* fmt, va_list ap) { return scan_wide(stdin, fmt, ap, old); }

WIDE_SCAN(ringlet_fwscanf_old, "fwscanf", true)
WIDE_SCAN(ringlet_fwscanf_c99, "__isoc99_fwscanf", false)
WIDE_SCAN_STDIN(ringlet_wscanf_old, "wscanf", true)
WIDE_SCAN_STDIN(ringlet_wscanf_c99, "__isoc99_wscanf", false)
WIDE_VSCAN(ringlet_vfwscanf_old, "vfwscanf", true)
WIDE_VSCAN(ringlet_vfwscanf_c99, "__isoc99_vfwscanf", false)
WIDE_VSCAN_STDIN(ringlet_vwscanf_old, "vwscanf", true)
WIDE_VSCAN_STDIN(ringlet_vwscanf_c99, "__isoc99_vwscanf", false)
