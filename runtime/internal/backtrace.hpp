// Backtraces for the fiber dump: unwinding the calling context (libgcc's DWARF unwinder, the
// one exceptions use) and naming addresses.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

namespace ringlet::detail {

// The return addresses of the calling context, innermost first, without the first `skip`
// frames (this function's own is never included). Stops at a fiber's entry (the frames
// below it are Boost.Context's start-up, with nothing to unwind), at `max`, or at a frame
// whose canonical frame address is not in [lo, hi) when `hi` is given (a fiber's stack).
int unwind_here(void** out, int max, int skip, const char* lo, const char* hi) noexcept;

// Names code addresses: "function+0xoff (library)" from the symbol tables, demangled, and
// " at file:line" where the module has debug information. Through elfutils' libdw.so.1,
// loaded at the first use (never linked: the dump is the only user); without it, dladdr
// (exported symbols only). Not thread-safe; one per dump.
class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;
  // `ret`: pc is a return address (its call is the instruction before; the line is that
  // call's).
  const std::string& describe(const void* pc, bool ret = true);
  // Whether libdw could be used ("" if so, else why not).
  const std::string& limits() const noexcept { return limits_; }

 private:
  struct Dw;
  std::unique_ptr<Dw> dw_;
  std::string limits_;
  std::unordered_map<const void*, std::string> cache_;
};

// The entry function of every fiber (the bottom frame an unwind of a fiber reaches).
bool is_fiber_entry(const void* function_start) noexcept;

}  // namespace ringlet::detail
