// Switching the thread pointer (see internal/thread_pointer.hpp).
#include "internal/thread_pointer.hpp"

#include <asm/prctl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "internal/scheduler.hpp"

#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif

namespace ringlet::detail {

namespace {

// -1 undecided, 0 arch_prctl, 1 wrfsbase. Decided on first use; a race decides it twice
// the same way.
std::atomic<int> g_method{-1};

int decide_method() noexcept {
  int m = (getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE) ? 1 : 0;
  if (const char* v = std::getenv("RINGLET_FSGSBASE"); v && std::strcmp(v, "0") == 0) m = 0;
  g_method.store(m, std::memory_order_relaxed);
  return m;
}

inline int method() noexcept {
  const int m = g_method.load(std::memory_order_relaxed);
  return m >= 0 ? m : decide_method();
}

}  // namespace

void set_thread_pointer(void* tp) noexcept {
  if (method() == 1) {
    asm volatile("wrfsbase %0" : : "r"(tp) : "memory");
  } else {
    long ret;
    asm volatile("syscall"
                 : "=a"(ret)
                 : "0"(static_cast<long>(SYS_arch_prctl)), "D"(static_cast<long>(ARCH_SET_FS)), "S"(tp)
                 : "rcx", "r11", "memory");
    (void)ret;
  }
}

const char* thread_pointer_method() noexcept { return method() == 1 ? "wrfsbase" : "arch_prctl"; }

void* home_thread_pointer() noexcept {
  Scheduler* s = Scheduler::current();
  return s ? s->home_tp() : thread_pointer();
}

bool adopt_thread_pointer(void* tp) noexcept {
  Scheduler* s = Scheduler::current();
  if (!s || !s->running()) return false;
  s->adopt_tp(tp);
  return true;
}

void* carrier_local_address(void* v) noexcept {
  Scheduler* s = Scheduler::current();
  if (!s) return v;
  char* const here = static_cast<char*>(thread_pointer());
  char* const home = static_cast<char*>(s->home_tp());
  if (here == home) return v;
  return static_cast<char*>(v) - here + home;
}

}  // namespace ringlet::detail
