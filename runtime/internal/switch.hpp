// The switch between two fibers' stacks: ringlet_jump_fcontext(to, data, by_jump) saves the
// callee-saved registers on the current stack, loads those saved at `to`, and returns there;
// the resumed side gets {the context just saved, data}. (Called straight from
// Scheduler::switch_to, through no inline wrapper: gdb's fiber commands look for switch_to
// as the caller of the switch.) On x86-64 SysV this is ringlet's own switch
// (switch_x86_64.cpp), which keeps Boost.Context 1.74's saved-context layout exactly (MXCSR
// and x87 control word, r12-r15, rbx, rbp, the return address: 0x40 bytes), so contexts made
// by make_fcontext, or saved by either switch, are resumed by either, and ontop_fcontext
// (the fiber dump), gdb's fiber commands and the unwinder read them as before. It differs in
// one instruction: it resumes with `ret` where jump_fcontext uses `jmp *%r8`, so that the
// return the CPU predicts from its return-stack buffer is the one taken (the `call` into the
// switch on one stack is matched by the `ret` out of it on the other). Boost's indirect jump
// leaves an entry on that buffer at every switch, so each later `ret` of the resumed fiber is
// predicted one frame off and mispredicted: on the two-fiber yield benchmark that cost more
// than the switch itself (bench/RESULTS.md). `by_jump` resumes by Boost's indirect jump
// instead, from the same function (one call site: a parked fiber's frames are the same
// whichever way the switch that parked it went, for the fiber dump's grouping). Elsewhere, and in a build for shadow stacks
// (-fcf-protection=return or full: a `ret` onto another stack is what a shadow stack
// refuses), Boost.Context's jump_fcontext.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#if defined(__x86_64__) && defined(__linux__) && !(defined(__CET__) && (__CET__ & 2))
extern "C" boost::context::detail::transfer_t ringlet_jump_fcontext(
    boost::context::detail::fcontext_t to, void* data, bool by_jump) noexcept
    __attribute__((visibility("hidden")));
#define RINGLET_OWN_SWITCH 1
#endif
