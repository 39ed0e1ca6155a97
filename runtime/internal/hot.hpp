// RINGLET_HOT: a function on the path every message takes (a fiber's read or write, its park,
// the switch, the engine's harvest). GCC puts such functions in .text.hot, which the linker
// lays out together: the path then spans a few pages of code instead of one or two per
// source file. Where the kernel switches page tables at each system call without PCID (a
// Meltdown-mitigated guest), every page the path touches between two calls costs a fresh
// TLB walk. Mark only what runs per message; the attribute also tells GCC to optimize it for
// speed.
#pragma once

#define RINGLET_HOT __attribute__((hot))
