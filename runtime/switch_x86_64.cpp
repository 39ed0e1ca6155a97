// ringlet_jump_fcontext: the x86-64 SysV fiber switch (see internal/switch.hpp for why it is
// ringlet's own). It saves and loads exactly what Boost.Context 1.74's jump_fcontext does, in
// the same layout (so each resumes the other's contexts): 0x40 bytes at the saved stack
// pointer (MXCSR, x87 control word, r12-r15, rbx, rbp, the return address); the return
// address at +0x38 is taken by `ret` (predicted by the return-stack buffer), or, when the
// third argument (dl) is true, popped and jumped to as Boost does. A fresh context from
// make_fcontext holds its trampoline there: either way enters it with the stack pointer at
// +0x40, as Boost's jump does. rax:rdx is the transfer_t
// returned to the resumed side (the context just saved, data); rdi:rsi repeat it for a fresh
// context's trampoline, which takes them as its arguments.
#include "internal/switch.hpp"

#if RINGLET_OWN_SWITCH
asm(R"(
        .pushsection .text.hot, "ax", @progbits
        .globl  ringlet_jump_fcontext
        .hidden ringlet_jump_fcontext
        .type   ringlet_jump_fcontext, @function
        .p2align 4
ringlet_jump_fcontext:
        leaq    -0x38(%rsp), %rsp
        stmxcsr (%rsp)
        fnstcw  0x4(%rsp)
        movq    %r12, 0x8(%rsp)
        movq    %r13, 0x10(%rsp)
        movq    %r14, 0x18(%rsp)
        movq    %r15, 0x20(%rsp)
        movq    %rbx, 0x28(%rsp)
        movq    %rbp, 0x30(%rsp)
        movq    %rsp, %rax
        movq    %rdi, %rsp
        ldmxcsr (%rsp)
        fldcw   0x4(%rsp)
        movq    0x8(%rsp), %r12
        movq    0x10(%rsp), %r13
        movq    0x18(%rsp), %r14
        movq    0x20(%rsp), %r15
        movq    0x28(%rsp), %rbx
        movq    0x30(%rsp), %rbp
        leaq    0x38(%rsp), %rsp
        testb   %dl, %dl
        movq    %rsi, %rdx
        movq    %rax, %rdi
        jnz     1f
        ret
1:      popq    %r8
        jmp     *%r8
        .size   ringlet_jump_fcontext, .-ringlet_jump_fcontext
        .popsection
)");
#endif
