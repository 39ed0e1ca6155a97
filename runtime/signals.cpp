#include "internal/signals.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include "internal/scheduler.hpp"

// glibc's own name for sigaction. An interposer of sigaction (one that wraps the program's
// handlers) must not see the runtime's fault handler, which is not the program's, so it is
// installed around it.
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace ringlet::detail {

namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;  // ASan's handler needs more than SIGSTKSZ
struct sigaction g_prev_segv {};
struct sigaction g_prev_bus {};

// Minimal async-signal-safe formatting into a fixed buffer.
struct Buf {
  char data[640];
  std::size_t len = 0;
  void put(const char* s) {
    while (*s && len < sizeof data) data[len++] = *s++;
  }
  void put(const char* s, std::size_t n) {
    for (std::size_t i = 0; i < n && len < sizeof data; ++i) data[len++] = s[i];
  }
  void num(unsigned long long v) {
    char tmp[24];
    int i = 0;
    do tmp[i++] = static_cast<char>('0' + v % 10), v /= 10;
    while (v);
    while (i && len < sizeof data) data[len++] = tmp[--i];
  }
  void hex(unsigned long long v) {
    put("0x");
    char tmp[20];
    int i = 0;
    do tmp[i++] = "0123456789abcdef"[v & 15], v >>= 4;
    while (v);
    while (i && len < sizeof data) data[len++] = tmp[--i];
  }
};

void on_fault(int sig, siginfo_t* si, void* uc) {
  const Fiber* f = Scheduler::running_fiber_unsafe();
  if (f && st(f).stack.lo) {
    const char* a = static_cast<const char*>(si->si_addr);
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    if (a < st(f).stack.lo && a >= st(f).stack.lo - page) report_overflow(f, a, false);
  }
  // Not ours: hand over to the previous handler, or let the default action happen.
  const struct sigaction& prev = sig == SIGSEGV ? g_prev_segv : g_prev_bus;
  if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
    prev.sa_sigaction(sig, si, uc);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // returning re-runs the faulting access under the default action
}

}  // namespace

// Called for every new scheduler, not once per process: a library or test framework may
// have put its own handler in front of ours since (Catch2 does, per test case). Ours goes
// back on top and passes on what it does not recognise to whatever is there now.
void install_fault_handler() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  struct sigaction sa {};
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (auto [sig, prev] : {std::pair{SIGSEGV, &g_prev_segv}, std::pair{SIGBUS, &g_prev_bus}}) {
    struct sigaction cur {};
    __sigaction(sig, nullptr, &cur);
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == &on_fault) continue;
    __sigaction(sig, &sa, prev);
  }
}

void* setup_altstack(bool& owned) {
  owned = false;
  stack_t cur{};
  if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE) &&
      cur.ss_size >= kAltStackSize)
    return nullptr;
  void* mem = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (mem == MAP_FAILED) return nullptr;  // overflow then dies by plain SIGSEGV, unnamed
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, kAltStackSize);
    return nullptr;
  }
  owned = true;
  return mem;
}

void teardown_altstack(void* stack, bool owned) noexcept {
  if (!owned || !stack) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(stack, kAltStackSize);
}

void report_overflow(const Fiber* f, const void* addr, bool at_switch) noexcept {
  Buf b;
  b.put("ringlet: fiber '");
  if (f->name.empty()) {
    b.put("fiber-");
    b.num(f->id);
  } else {
    b.put(f->name.data(), f->name.size());
  }
  b.put("' (#");
  b.num(f->id);
  b.put(") overflowed its stack of ");
  b.num(st(f).stack.size / 1024);
  b.put(" KiB");
  if (at_switch) {
    b.put(" (found at a switch: its lowest word was overwritten or the stack pointer is at ");
  } else {
    b.put(" (fault at ");
  }
  b.hex(reinterpret_cast<unsigned long long>(addr));
  b.put(at_switch ? ")" : ", in the guard page below the stack)");
  b.put(". Give it a larger stack with SpawnOptions::stack_size or RINGLET_STACK_SIZE.\n");
  ssize_t ignored = write(STDERR_FILENO, b.data, b.len);
  (void)ignored;
  signal(SIGABRT, SIG_DFL);
  abort();
}

}  // namespace ringlet::detail
