// The backtrace of a suspended fiber, for the fiber dump: its own frames unwound on its own
// stack, by a function run on top of its saved context (ontop_fcontext), which leaves that
// context exactly as its switch left it.
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

#include <boost/context/detail/fcontext.hpp>

#include "internal/backtrace.hpp"
#include "internal/scheduler.hpp"

#include "internal/fiber_sanitizers.hpp"

namespace ringlet::detail {

namespace ctx = boost::context::detail;

namespace {

// What unwind_suspended hands to grab_frames, on the dumper's stack.
struct Grab {
  Fiber* f;
  void** out;
  int max;
  int depth = 0;
  const void* back_bottom = nullptr;  // the dumper's stack (ASan)
  std::size_t back_size = 0;
  void* back_tsan = nullptr;          // the dumper's TSan fiber
};

// Runs on f's stack, called by ontop_fcontext on top of the point where f stopped: f's
// registers are loaded and the return address of f's jump_fcontext (in switch_to) is still
// on the stack, so the unwinder walks from here into f's own frames. Then it jumps back to
// the dumper and is never resumed: the dumper puts back the bytes of f's saved context that
// this frame overwrote, so f's context is again exactly the one its own switch left (a later
// dump enters the same state, never a frame of an earlier one). Not instrumented by ASan: its
// frame must not live on a fake stack it leaves behind (the switches are announced).
__attribute__((no_sanitize("address"))) ctx::transfer_t grab_frames(ctx::transfer_t t) {
  auto* g = static_cast<Grab*>(t.data);
#if RINGLET_ASAN
  // No fake stack of f's is restored (null): f's own stays saved in st(f) untouched.
  __sanitizer_finish_switch_fiber(nullptr, &g->back_bottom, &g->back_size);
#endif
  const char* lo = st(g->f).stack.lo;
  g->depth = unwind_here(g->out, g->max, 1, lo, lo + st(g->f).stack.size);  // from switch_to on
#if RINGLET_ASAN
  __sanitizer_start_switch_fiber(nullptr, g->back_bottom, g->back_size);
#endif
#if RINGLET_TSAN
  __tsan_switch_to_fiber(g->back_tsan, 0);
#endif
  ctx::jump_fcontext(t.fctx, nullptr);
  std::abort();  // never resumed
}

// Bytes at and above a suspended fiber's saved stack pointer that hold its saved context
// (Boost.Context: 0x40 on x86-64, 0xb0 on AArch64, the return address included), kept
// while grab_frames runs below them. More is harmless: nothing above is written meanwhile.
constexpr std::size_t kSavedContextBytes = 512;

// A word-by-word copy that ASan does not check: above the saved context lie f's own frames,
// whose redzones an instrumented build keeps poisoned (the bytes are only kept and put back).
__attribute__((no_sanitize("address"), noinline)) void copy_words(void* to, const void* from, std::size_t n) noexcept {
  auto* d = static_cast<volatile std::uintptr_t*>(to);
  auto* s = static_cast<const volatile std::uintptr_t*>(from);
  for (std::size_t i = 0; i < n / sizeof(std::uintptr_t); ++i) d[i] = s[i];
}

}  // namespace

int Scheduler::unwind_suspended(Fiber* f, void** out, int max) noexcept {
  assert(tls_current_ == this && st(f).sched == this && f != running_);
  assert(st(f).status == FiberStatus::Parked || st(f).status == FiberStatus::Ready);
  if (!st(f).started || max <= 0) return 0;
  char* const sp = static_cast<char*>(st(f).ctx);
  char* const top = st(f).stack.lo + st(f).stack.size;
  if (sp < st(f).stack.lo || sp >= top || static_cast<std::size_t>(sp - st(f).stack.lo) < kUnwindRoom) return 0;
  // ontop_fcontext pops f's saved registers and calls grab_frames where they were: keep them.
  alignas(std::uintptr_t) unsigned char saved[kSavedContextBytes];
  const std::size_t keep = std::min<std::size_t>(kSavedContextBytes, static_cast<std::size_t>(top - sp)) &
                           ~(sizeof(std::uintptr_t) - 1);  // sp is 16-aligned: whole words
  copy_words(saved, sp, keep);
  Grab g{f, out, max};
  const int saved_errno = errno;
#if RINGLET_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, st(f).asan_stack_bottom, st(f).asan_stack_size);
#endif
#if RINGLET_TSAN
  g.back_tsan = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(st(f).tsan_fiber, 0);
#endif
  (void)ctx::ontop_fcontext(st(f).ctx, &g, &grab_frames);
#if RINGLET_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  copy_words(sp, saved, keep);  // st(f).ctx is f's own context again, as its switch left it
  errno = saved_errno;
  return g.depth;
}

}  // namespace ringlet::detail
