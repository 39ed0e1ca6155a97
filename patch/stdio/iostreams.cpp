// C++'s standard streams on the patch's standard FILEs. libstdc++'s std::cout, std::cin,
// std::cerr, std::clog and their wide twins, synchronised with stdio (the default), write and
// read through a stdio_sync_filebuf holding the FILE* that stdout/stdin/stderr named when
// the streams were made. A library with <iostream> whose constructors ran before the patch's
// made them on glibc's own FILEs: printf would then go to the patch's stdout and std::cout
// to glibc's, two buffers on one descriptor, and the program's lines would come out in
// another order than natively (and std::cout would block its OS thread on a full pipe). So
// after the standard FILEs are taken (files.cpp), each stream still synchronised with one
// of glibc's old FILEs is given a stdio_sync_filebuf on the patch's; streams not made yet
// are made now, on the patch's FILEs. A stream the program took out of sync
// (sync_with_stdio(false)) or gave another buffer is left alone.
#include <ext/stdio_sync_filebuf.h>

#include <iostream>
#include <new>

#include "stdio.hpp"

namespace ringlet::patch::detail {
namespace {

template <class C>
void retarget(std::basic_ios<C>& s, FILE* old, FILE* now) noexcept {
  using Buf = __gnu_cxx::stdio_sync_filebuf<C>;
  if (old == now) return;
  auto* b = dynamic_cast<Buf*>(s.rdbuf());
  if (!b || b->file() != old) return;
  // Made once per stream, never destroyed: the streams are flushed at exit, after every
  // destructor of ours could run.
  alignas(Buf) static unsigned char store[6][sizeof(Buf)];
  static int used = 0;
  if (used >= 6) return;
  Buf* mine = new (store[used++]) Buf(now);
  s.rdbuf(mine);
}

}  // namespace

void stdio_retarget_iostreams(FILE* old_in, FILE* old_out, FILE* old_err) noexcept {
  // Makes the standard streams if no one has yet (then on the FILEs stdin/stdout/stderr
  // name now, the patch's), else does nothing.
  static std::ios_base::Init init;
  try {
    retarget(std::cin, old_in, stdin);
    retarget(std::cout, old_out, stdout);
    retarget(std::cerr, old_err, stderr);
    retarget(std::clog, old_err, stderr);
    retarget(std::wcin, old_in, stdin);
    retarget(std::wcout, old_out, stdout);
  } catch (...) {
  }
}

}  // namespace ringlet::patch::detail
