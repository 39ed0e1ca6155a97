// Unwinding and symbolising for the fiber dump (internal/backtrace.hpp).
//
// Unwinding: libgcc's _Unwind_Backtrace, the unwinder C++ exceptions already use. Never
// libunwind: it exports _Unwind_* too, and in a process the patch is preloaded into it would
// replace libgcc's for every exception of the program.
// Names: elfutils' libdw.so.1 through dlopen at dump time, for the full symbol table (static
// functions, a non-exported executable) and file:line; the few prototypes are declared here.
// Without it, dladdr.
#include "internal/backtrace.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>
#include <unwind.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace ringlet::detail {

namespace {

struct UnwindState {
  void** out;
  int max;
  int skip;
  int depth;
  std::uintptr_t lo, hi;
};

_Unwind_Reason_Code on_frame(_Unwind_Context* c, void* arg) {
  auto* u = static_cast<UnwindState*>(arg);
  if (u->hi) {
    const std::uintptr_t cfa = _Unwind_GetCFA(c);
    if (cfa < u->lo || cfa > u->hi) return _URC_END_OF_STACK;
  }
  const std::uintptr_t ip = _Unwind_GetIP(c);
  if (ip == 0) return _URC_END_OF_STACK;
  if (u->skip > 0) {
    --u->skip;
  } else {
    u->out[u->depth++] = reinterpret_cast<void*>(ip);
  }
  if (is_fiber_entry(reinterpret_cast<const void*>(_Unwind_GetRegionStart(c))) || u->depth >= u->max)
    return _URC_END_OF_STACK;
  return _URC_NO_REASON;
}

// --- libdw's few entry points (elfutils/libdwfl.h), declared for dlsym ---
struct Dwfl;
struct Dwfl_Module;
struct Dwfl_Line;
using Dwarf_Addr = std::uint64_t;
using Dwarf_Word = std::uint64_t;
struct Dwfl_Callbacks {
  void* find_elf;
  void* find_debuginfo;
  void* section_address;
  char** debuginfo_path;
};

std::string demangled(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  if (status != 0 || !d) return name;
  std::string s = d;
  std::free(d);
  return s;
}

const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

}  // namespace

int unwind_here(void** out, int max, int skip, const char* lo, const char* hi) noexcept {
  UnwindState u{out, max, skip + 1, 0, reinterpret_cast<std::uintptr_t>(lo), reinterpret_cast<std::uintptr_t>(hi)};
  if (max <= 0) return 0;
  _Unwind_Backtrace(&on_frame, &u);
  return u.depth;
}

struct Symbolizer::Dw {
  void* lib = nullptr;
  Dwfl* dwfl = nullptr;
  Dwfl* (*begin)(const Dwfl_Callbacks*) = nullptr;
  void (*end)(Dwfl*) = nullptr;
  Dwfl_Module* (*addrmodule)(Dwfl*, Dwarf_Addr) = nullptr;
  const char* (*addrname)(Dwfl_Module*, Dwarf_Addr) = nullptr;
  const char* (*addrinfo)(Dwfl_Module*, Dwarf_Addr, std::int64_t*, void*, void*, void*, void*) = nullptr;
  const char* (*module_info)(Dwfl_Module*, void***, Dwarf_Addr*, Dwarf_Addr*, Dwarf_Addr*, Dwarf_Addr*,
                             const char**, const char**) = nullptr;
  Dwfl_Line* (*getsrc)(Dwfl_Module*, Dwarf_Addr) = nullptr;
  const char* (*lineinfo)(Dwfl_Line*, Dwarf_Addr*, int*, int*, Dwarf_Word*, Dwarf_Word*) = nullptr;
  Dwfl_Callbacks callbacks{};

  ~Dw() {
    if (dwfl) end(dwfl);
    if (lib) ::dlclose(lib);
  }

  // Empty if usable, else why not.
  std::string open() {
    lib = ::dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return "no file:line and only exported names: libdw.so.1 (elfutils) cannot be loaded";
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      return fn != nullptr;
    };
    int (*report)(Dwfl*, pid_t) = nullptr;
    int (*report_end)(Dwfl*, void*, void*) = nullptr;
    if (!sym(begin, "dwfl_begin") || !sym(end, "dwfl_end") || !sym(addrmodule, "dwfl_addrmodule") ||
        !sym(addrname, "dwfl_module_addrname") || !sym(module_info, "dwfl_module_info") ||
        !sym(getsrc, "dwfl_module_getsrc") || !sym(lineinfo, "dwfl_lineinfo") ||
        !sym(report, "dwfl_linux_proc_report") || !sym(report_end, "dwfl_report_end"))
      return "no file:line and only exported names: libdw.so.1 lacks the dwfl functions";
    callbacks.find_elf = ::dlsym(lib, "dwfl_linux_proc_find_elf");
    callbacks.find_debuginfo = ::dlsym(lib, "dwfl_standard_find_debuginfo");
    if (!callbacks.find_elf || !callbacks.find_debuginfo)
      return "no file:line and only exported names: libdw.so.1 lacks the dwfl functions";
    dwfl = begin(&callbacks);
    if (!dwfl) return "no file:line and only exported names: dwfl_begin failed";
    if (report(dwfl, ::getpid()) != 0 || report_end(dwfl, nullptr, nullptr) != 0)
      return "no file:line and only exported names: libdw cannot read /proc/self/maps";
    return {};
  }
};

Symbolizer::Symbolizer() : dw_(std::make_unique<Dw>()) {
  const int saved = errno;
  limits_ = dw_->open();
  if (!limits_.empty()) dw_.reset();
  errno = saved;
}

Symbolizer::~Symbolizer() = default;

const std::string& Symbolizer::describe(const void* pc, bool ret) {
  auto [it, fresh] = cache_.try_emplace(pc);
  if (!fresh) return it->second;
  std::string& out = it->second;
  const auto addr = reinterpret_cast<std::uintptr_t>(pc);
  const std::uintptr_t look = ret && addr ? addr - 1 : addr;  // inside the call instruction
  char buf[64];
  const int saved = errno;
  // The module and its exported symbol (dladdr), then libdw's better answers if it can.
  Dl_info info{};
  const bool dl = ::dladdr(pc, &info) != 0 && info.dli_fname && *info.dli_fname;
  std::string function;
  std::uintptr_t function_start = 0;
  const char* module = dl ? base_name(info.dli_fname) : nullptr;
  if (dl && info.dli_sname) {
    function = demangled(info.dli_sname);
    function_start = reinterpret_cast<std::uintptr_t>(info.dli_saddr);
  }
  std::string where;
  if (dw_) {
    if (Dwfl_Module* m = dw_->addrmodule(dw_->dwfl, look)) {
      // dwfl_module_addrname gives the symbol's name but not its start; addrinfo does.
      if (!dw_->addrinfo)
        dw_->addrinfo = reinterpret_cast<decltype(dw_->addrinfo)>(::dlsym(dw_->lib, "dwfl_module_addrinfo"));
      std::int64_t off = 0;
      const char* name = nullptr;
      if (dw_->addrinfo) {
        // GElf_Sym (24 bytes), GElf_Word shndx, Elf** elf, Dwarf_Addr* bias: room enough.
        alignas(8) unsigned char sym[64];
        std::uint32_t shndx = 0;
        void* elf = nullptr;
        Dwarf_Addr bias = 0;
        name = dw_->addrinfo(m, look, &off, sym, &shndx, &elf, &bias);
        if (name) {
          function = demangled(name);
          function_start = look - static_cast<std::uintptr_t>(off);
        }
      }
      if (!name && (name = dw_->addrname(m, look))) function = demangled(name);
      const char* main_file = nullptr;
      const char* modname = dw_->module_info(m, nullptr, nullptr, nullptr, nullptr, nullptr, &main_file, nullptr);
      if (!module && modname) module = base_name(modname);
      if (Dwfl_Line* line = dw_->getsrc(m, look)) {
        int lineno = 0;
        if (const char* file = dw_->lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
          where = std::string(" at ") + base_name(file) + ":" + std::to_string(lineno);
        }
      }
    }
  }
  if (!function.empty()) {
    out = function;
    if (function_start && addr >= function_start) {
      std::snprintf(buf, sizeof buf, "+0x%" PRIxPTR, addr - function_start);
      out += buf;
    }
  } else {
    std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, addr);
    out = buf;
    if (dl) {
      std::snprintf(buf, sizeof buf, " (+0x%" PRIxPTR ")",
                    addr - reinterpret_cast<std::uintptr_t>(info.dli_fbase));
      out += buf;
    }
  }
  if (module) out += std::string(" (") + module + ")";
  out += where;
  errno = saved;
  return out;
}

}  // namespace ringlet::detail
