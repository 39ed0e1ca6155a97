// dlopen and dlclose with fiber threads' TLS blocks: a library with static TLS loaded while
// blocks exist must have its image copied into them, the caller's included, before anything
// uses it (tls.cpp's tls_after_dlopen; glibc copies it for the threads it knows only).
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "state.hpp"
#include "tls.hpp"

namespace ringlet::patch::detail {

namespace {

// The search directories dlinfo(RTLD_DI_SERINFO) lists for an object, in glibc's order:
// its DT_RPATH (and its loaders'), LD_LIBRARY_PATH, its DT_RUNPATH, then the system
// directories (ld.so.cache is consulted before those).
std::vector<std::string> search_dirs(void* handle) {
  std::vector<std::string> dirs;
  Dl_serinfo size{};
  if (dlinfo(handle, RTLD_DI_SERINFOSIZE, &size) != 0 || size.dls_size < sizeof(Dl_serinfo)) return dirs;
  std::vector<unsigned char> mem(size.dls_size);
  auto* si = reinterpret_cast<Dl_serinfo*>(mem.data());
  si->dls_size = size.dls_size;
  si->dls_cnt = size.dls_cnt;
  if (dlinfo(handle, RTLD_DI_SERINFO, si) != 0) return dirs;
  for (unsigned i = 0; i < si->dls_cnt; ++i) dirs.emplace_back(si->dls_serpath[i].dls_name ? si->dls_serpath[i].dls_name : "");
  return dirs;
}

link_map* map_at(const void* addr) noexcept {
  Dl_info info;
  link_map* lm = nullptr;
  return dladdr1(addr, &info, reinterpret_cast<void**>(&lm), RTLD_DL_LINKMAP) ? lm : nullptr;
}

// The file glibc would open for `file`, a bare name, dlopen()ed from `caller`: the first of
// the directories searched ahead of ld.so.cache for the caller that holds it. Those are
// the caller's list less the tail it shares with the dynamic loader's own (which has no
// RPATH or RUNPATH): the system directories, and LD_LIBRARY_PATH where it comes last, which
// glibc searches the same way whoever calls. Empty if no such directory holds it, or if a
// library of that name is loaded already (glibc answers with it whoever asks).
std::string resolve_for_caller(const char* file, const void* caller, void* (*real_open)(const char*, int)) {
  if (void* h = real_open(file, RTLD_LAZY | RTLD_NOLOAD)) {
    RINGLET_REAL(dlclose)(h);
    return {};
  }
  link_map* lm = map_at(caller);
  link_map* rtld = map_at(&_r_debug);
  if (!lm || !rtld) return {};
  const std::vector<std::string> mine = search_dirs(lm), common = search_dirs(rtld);
  std::size_t shared = 0;
  while (shared < mine.size() && shared < common.size() &&
         mine[mine.size() - 1 - shared] == common[common.size() - 1 - shared])
    ++shared;
  for (std::size_t i = 0; i + shared < mine.size(); ++i) {
    if (mine[i].empty()) continue;
    std::string path = mine[i] + "/" + file;
    if (access(path.c_str(), F_OK) == 0) return path;
  }
  return {};
}

// "$ORIGIN" in a name: the directory of the caller's object.
std::string expand_origin(const char* file, const void* caller) {
  link_map* lm = map_at(caller);
  if (!lm) return {};
  std::string origin = lm->l_name && *lm->l_name ? lm->l_name : "";
  if (origin.empty()) {  // the executable
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return {};
    origin.assign(exe, static_cast<std::size_t>(n));
  }
  origin.erase(origin.rfind('/') == std::string::npos ? 0 : origin.rfind('/'));
  std::string out(file);
  for (const char* key : {"${ORIGIN}", "$ORIGIN"})
    for (std::size_t at; (at = out.find(key)) != std::string::npos;) out.replace(at, std::strlen(key), origin);
  return out.find('$') == std::string::npos ? out : std::string();
}

}  // namespace

}  // namespace ringlet::patch::detail

// dlopen: a library with static TLS loaded while blocks exist must have its image copied
// into them, the caller's included, before anything uses it (glibc copies it for the
// threads it knows only). glibc resolves a bare name and $ORIGIN against its *caller*,
// found from the return address, so the hook is a stub that leaves the stack as it found
// it: ringlet_dlopen_tracked gets the caller's address, resolves such names as glibc would
// for it (resolve_for_caller, expand_origin), calls glibc and then copies. Names it cannot
// resolve the caller's way ($LIB, $PLATFORM), and every call while no fiber thread has a
// block, jump straight to glibc.
extern "C" {
__attribute__((visibility("hidden"))) void* ringlet_real_dlopen = nullptr;

__attribute__((visibility("hidden"))) int ringlet_dlopen_route(const char* file, const void* caller) noexcept {
  if (!ringlet_real_dlopen) ringlet_real_dlopen = ringlet::patch::detail::resolve_next("dlopen");
  if (!ringlet::patch::detail::tls_blocks_in_use() || !file) return 0;
  if (std::strchr(file, '$')) {
    try {
      return ringlet::patch::detail::expand_origin(file, caller).empty() ? 0 : 1;
    } catch (...) {
      return 0;
    }
  }
  return 1;
}

__attribute__((visibility("hidden"))) void* ringlet_dlopen_tracked(const char* file, int mode,
                                                                   const void* caller) noexcept {
  using Open = void* (*)(const char*, int);
  const auto real = reinterpret_cast<Open>(ringlet_real_dlopen);
  std::string resolved;
  try {
    if (std::strchr(file, '$')) resolved = ringlet::patch::detail::expand_origin(file, caller);
    else if (!std::strchr(file, '/')) resolved = ringlet::patch::detail::resolve_for_caller(file, caller, real);
  } catch (...) {
    resolved.clear();  // out of memory: glibc searches from here
  }
  void* h = real(resolved.empty() ? file : resolved.c_str(), mode);
  if (h) {
    const int saved = errno;
    ringlet::patch::detail::tls_after_dlopen();
    errno = saved;
  }
  return h;
}
}

asm(R"(
	.text
	.globl	dlopen
	.type	dlopen, @function
dlopen:
	.cfi_startproc
	endbr64
	pushq	%rdi
	.cfi_adjust_cfa_offset 8
	pushq	%rsi
	.cfi_adjust_cfa_offset 8
	movq	16(%rsp), %rsi
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	call	ringlet_dlopen_route
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%rsi
	.cfi_adjust_cfa_offset -8
	popq	%rdi
	.cfi_adjust_cfa_offset -8
	movq	(%rsp), %rdx
	testl	%eax, %eax
	jnz	ringlet_dlopen_tracked
	jmp	*ringlet_real_dlopen(%rip)
	.cfi_endproc
	.size	dlopen, .-dlopen
)");

RINGLET_HOOK int dlclose(void* handle) {
  const int r = RINGLET_REAL(dlclose)(handle);
  if (ringlet::patch::detail::tls_blocks_in_use()) {
    const int saved = errno;
    ringlet::patch::detail::tls_after_dlopen();  // forget the static modules that left
    errno = saved;
  }
  return r;
}
