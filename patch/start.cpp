// Whole-binary mode: under LD_PRELOAD the program's main runs as the main fiber of a ringlet
// scheduler, so every blocking call it makes goes through the reactor from the first one.
//
// It applies when libringlet_patch.so was preloaded (LD_PRELOAD names it) and the program
// does not itself link libringlet (a ringlet program runs its own scheduler; the patch then
// only makes its third-party calls cooperative). RINGLET_PATCH=none or RINGLET_PATCH_MAIN=0
// leave main on the plain thread.
#include <dlfcn.h>
#include <link.h>
#include <sys/resource.h>
#include <unistd.h>

#include <setjmp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "internal/dump.hpp"
#include "ringlet/run.hpp"
#include "state.hpp"

namespace {

using MainFn = int (*)(int, char**, char**);
using StartFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);

MainFn g_main = nullptr;

bool preloaded() {
  const char* p = std::getenv("LD_PRELOAD");
  return p && std::strstr(p, "libringlet_patch") != nullptr;
}

// Does the executable itself need libringlet (DT_NEEDED)? Then it is a ringlet program.
int find_ringlet(dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name && info->dlpi_name[0] != '\0') return 1;  // the executable comes first
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 1;
  const char* strtab = nullptr;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d)
    if (d->d_tag == DT_STRTAB) strtab = reinterpret_cast<const char*>(d->d_un.d_ptr);
  if (!strtab) return 1;
  for (const ElfW(Dyn)* d = dyn; d->d_tag != DT_NULL; ++d)
    if (d->d_tag == DT_NEEDED && std::strncmp(strtab + d->d_un.d_val, "libringlet.so", 13) == 0)
      *static_cast<bool*>(data) = true;
  return 1;
}

bool whole_binary_mode() {
  if (!preloaded()) return false;
  if (const char* v = std::getenv("RINGLET_PATCH_MAIN"); v && std::strcmp(v, "0") == 0) return false;
  if (ringlet::patch::enabled() == 0) return false;
  bool ringlet_program = false;
  dl_iterate_phdr(&find_ringlet, &ringlet_program);
  return !ringlet_program;
}

// The main fiber's stack: as large as the thread's would have been (RLIMIT_STACK, 8 MiB if
// unlimited), committed only as it is touched.
std::size_t main_stack_size() {
  rlimit rl{};
  std::size_t n = 8u << 20;
  if (getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) n = rl.rlim_cur;
  if (n < (256u << 10)) n = 256u << 10;
  if (n > (1u << 30)) n = 1u << 30;
  return n;
}

// RINGLET_THREADS: how many OS threads (carriers, a scheduler each) carry the program's
// threads. Unset or empty: one per CPU of the process's affinity mask, as a native threaded
// program gets (0 says the same). A value that is not a whole number from 0 to 1024 is
// refused before the program starts: its run on a count it did not ask for would be a
// silent change of what the operator wanted (ringlet-run checks its --threads the same way).
unsigned threads_setting() {
  const char* v = std::getenv("RINGLET_THREADS");
  if (!v || !*v) return 0;
  const char* p = v;
  while (*p == ' ') ++p;
  bool digits = *p != '\0';
  for (const char* q = p; *q; ++q) digits &= *q >= '0' && *q <= '9';
  const unsigned long n = digits && std::strlen(p) <= 5 ? std::strtoul(p, nullptr, 10) : 0;
  if (!digits || n > ringlet::patch::kMaxCarriers) {
    std::fprintf(stderr,
                 "ringlet patch: RINGLET_THREADS='%s' is not a number of OS threads from 0 (one per "
                 "CPU) to %u; the program was not started\n", v, ringlet::patch::kMaxCarriers);
    std::fflush(stderr);
    std::_Exit(2);
  }
  return static_cast<unsigned>(n);
}

// RINGLET_MAX_BLOCKING_MS for a patched program. Unset, the monitor is off — an unmodified
// program's stderr is no place for our reports — unless RINGLET_MONITOR_FILE asks for them
// (then 100 ms). A malformed value is said and 100 ms used: the program's run is not ours
// to end over a setting.
long monitor_setting() {
  const char* v = std::getenv("RINGLET_MAX_BLOCKING_MS");
  if (!v || !*v) {
    const char* file = std::getenv("RINGLET_MONITOR_FILE");
    return file && *file ? 100 : 0;
  }
  char* end = nullptr;
  const long ms = std::strtol(v, &end, 10);
  if (end != v && *end == '\0' && ms >= 0) return ms;
  std::fprintf(stderr,
               "ringlet patch: RINGLET_MAX_BLOCKING_MS='%s' is not a number of milliseconds (0 turns "
               "the monitor off); using 100\n", v);
  return 100;
}

// The main fiber's body. Returning from main ends the process at once, as it does natively
// (exit(), whatever other threads are doing); pthread_exit in main unwinds to here instead,
// and the process lives on until the last thread has finished.
__attribute__((noinline)) int main_body(int argc, char** argv, char** envp) {
  static jmp_buf exit_jb;
  if (setjmp(exit_jb) == 0) {
    ringlet::patch::detail::set_main_exit(&exit_jb, reinterpret_cast<void*>(&main_body));
    ringlet::patch::detail::start_main_cpu_clock();
    std::exit(g_main(argc, argv, envp));
  }
  return 0;
}

int main_on_fiber(int argc, char** argv, char** envp) {
  ringlet::RunOptions opts;
  opts.stack_size = main_stack_size();
  // The blocking monitor (gevent's max_blocking_time): on when RINGLET_MAX_BLOCKING_MS or
  // RINGLET_MONITOR_FILE is set.
  opts.max_blocking_ms = monitor_setting();
  // Threads that all wait (for a signal handler's sem_post, say) wait, as they would
  // natively: no deadlock breaker, whose EINTR a C caller would retry at once, forever.
  opts.deadlock_waits = true;
  // The fiber dump on a signal: only when RINGLET_DUMP_SIGNAL asks (the program may own
  // SIGQUIT, and its default action, a core dump, is the program's).
  // A value that names no signal is said and ignored, as RINGLET_MAX_BLOCKING_MS's is: the
  // program runs as it would natively, not aborted by a setting of ours.
  const char* dump_signal = std::getenv("RINGLET_DUMP_SIGNAL");
  opts.dump_signal = 0;
  if (dump_signal && *dump_signal) {
    try {
      opts.dump_signal = ringlet::detail::dump_signal_setting(-1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ringlet patch: %s; no dump signal\n", e.what());
    }
  }
  opts.threads = threads_setting();
  int rc = 0;
  try {
    rc = ringlet::run([&] { return main_body(argc, argv, envp); }, opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ringlet patch: %s\n", e.what());
    std::fflush(stderr);
    throw;  // as an exception escaping main would: std::terminate
  }
  return rc;
}

}  // namespace

RINGLET_HOOK int __libc_start_main(MainFn main, int argc, char** argv, void (*init)(), void (*fini)(),
                                   void (*rtld_fini)(), void* stack_end) {
  auto real = reinterpret_cast<StartFn>(ringlet::patch::detail::resolve_next("__libc_start_main"));
  if (whole_binary_mode()) {
    g_main = main;
    main = &main_on_fiber;
  }
  return real(main, argc, argv, init, fini, rtld_fini, stack_end);
}

// vfork's child borrows the parent's memory and thread, scheduler included, until it execs:
// a hook running there (close, dup2 before exec) would act on the parent's engine. A fork
// gives the child its own (POSIX allows vfork to be fork). The real vfork cannot be called
// from here at all: its child would return through this frame and wreck the parent's.
RINGLET_HOOK pid_t vfork(void) { return fork(); }
