// Wide-character stdio on FILEs on pipes (fdopen), which the patch makes its own: what a
// program writes with wprintf/fputws/fputwc arrives as the locale's multibyte text, what it
// reads with fgetwc/fgetws/ungetwc comes back as characters, and the orientation answers as
// glibc's (fwide; a wide call on a byte-oriented FILE fails). Each verdict is printed and
// must match the native run.
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

static void drain(int fd, const char* what) {
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  buf[n > 0 ? n : 0] = 0;
  printf("%s: the pipe got %zd bytes: \"%s\"\n", what, n, buf);
}

int main(void) {
  alarm(60);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!setlocale(LC_ALL, "C.UTF-8")) {
    printf("no C.UTF-8 locale\n");
    return 1;
  }
  int p[2];
  if (pipe(p)) return 2;
  FILE* w = fdopen(p[1], "w");
  printf("fwide of a new FILE: %d\n", fwide(w, 0));
  int n = fwprintf(w, L"caf\u00e9 %d %ls|", 42, L"\u263a");
  printf("fwprintf returned %d, fwide now %d\n", n, fwide(w, 0));
  printf("fputws returned %s\n", fputws(L"line\u00e9\n", w) >= 0 ? "ok" : "EOF");
  printf("fputwc returned %s\n", fputwc(L'\u00fc', w) == L'\u00fc' ? "the character" : "WEOF");
  printf("fflush %d\n", fflush(w));
  drain(p[0], "wide output");
  fclose(w);

  // A byte-oriented FILE refuses wide calls.
  if (pipe(p)) return 2;
  w = fdopen(p[1], "w");
  fputs("bytes first|", w);
  n = fwprintf(w, L"wide after|");
  printf("fwprintf after fputs returned %d, fwide %d\n", n, fwide(w, 0));
  fflush(w);
  drain(p[0], "byte output");
  fclose(w);
  if (pipe(p)) return 2;
  w = fdopen(p[1], "w");
  const int first = fwide(w, -1);
  printf("fwide(w, -1) of a new FILE: %d, then fwide(w, 1): %d\n", first, fwide(w, 1));
  fclose(w);
  close(p[0]);

  // Wide input.
  if (pipe(p)) return 2;
  const char text[] = "h\xc3\xa9llo w\xc3\xb6rld\nsecond \xe2\x98\xba line\nbad \xff end";
  if (write(p[1], text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) return 2;
  close(p[1]);
  FILE* r = fdopen(p[0], "r");
  wint_t c = fgetwc(r);
  printf("fgetwc: U+%04X, fwide %d\n", (unsigned)c, fwide(r, 0));
  c = fgetwc(r);
  printf("fgetwc: U+%04X\n", (unsigned)c);
  printf("ungetwc: %s\n", ungetwc(c, r) == c ? "the character" : "WEOF");
  wchar_t line[64];
  if (fgetws(line, 64, r)) printf("fgetws: \"%ls\" (%zu characters)\n", line, wcslen(line));
  if (fgetws(line, 64, r)) printf("fgetws: \"%ls\" (%zu characters)\n", line, wcslen(line));
  errno = 0;
  wchar_t* got = fgetws(line, 64, r);
  const int e = errno;
  printf("fgetws over an invalid byte: %s, errno %s, ferror %d\n", got ? "a line" : "NULL",
         strerror(e), ferror(r) != 0);
  fclose(r);
  return 0;
}
