// Thread-locals per fiber thread: every fiber thread owns a TLS block of its own, made the
// way glibc makes a new thread's, and the scheduler loads its thread pointer whenever the
// thread runs (runtime/internal/thread_pointer.hpp). So `__thread` and `thread_local`
// variables of every module are the thread's own, at their own addresses, from the modules'
// TLS images; C++ thread_local destructors run when the thread ends.
//
// How a block is made (glibc 2.36, x86-64; other versions fall back to shared TLS):
//  - memory for the static TLS area and the TCB (struct pthread), zeroed; the TCB starts as
//    a copy of the OS thread's own, so the stack-protector canary, the pointer guard and
//    the "multiple threads" flag read the same; its self pointers name the block (glibc
//    finds a thread's TLS through them); rseq reads as not registered (sched_getcpu asks
//    the kernel); the block is on none of glibc's thread lists;
//  - glibc's _dl_allocate_tls fills in the DTV and copies every loaded module's TLS image;
//  - malloc's per-thread cache and arena pointers are the OS thread's (so nothing of
//    malloc's stays behind when a thread ends); where they sit in libc's block is found
//    once, by watching a first malloc in a probe block;
//  - libraries dlopen()ed with static TLS while blocks exist get their image copied into
//    every live block (glibc does this only for the threads on its lists).
// The thread's first act is __ctype_init (glibc's start_thread does the same); its last are
// the thread_local destructors (__call_tls_dtors), then the pthread key destructors, then
// dlerror's buffer, and the block is freed once the thread runs on its OS thread's again.
#pragma once

#include <cstddef>

namespace ringlet::patch::detail {

struct TlsBlock;

// Per-thread TLS for fiber threads in this process? Decided on first call (the first
// pthread_create made into a fiber), then fixed: RINGLET_THREAD_TLS=shared, a sanitizer
// build, a glibc other than the tested one, or a probe that fails keeps the shared TLS of
// earlier versions, said once on stderr unless asked for. RINGLET_VERBOSE says the mode.
bool tls_per_thread() noexcept;
// True once some fiber thread has had a block of its own (cheap; for the hooks).
bool tls_blocks_in_use() noexcept;
// "per thread (wrfsbase)", "shared (why)"...
const char* tls_mode() noexcept;

// A new block in `mem`, tls_block_bytes() of it (null if memory for its DTV runs out).
// Call only when tls_per_thread(). A fiber thread makes its block at the top of its own
// stack, as glibc puts a thread's TLS at the top of its stack: no allocation, and the pages
// are the ones its first frames touch anyway.
std::size_t tls_block_bytes() noexcept;
TlsBlock* tls_block_create(void* mem) noexcept;
// Said once when a block could not be made.
void tls_out_of_memory() noexcept;
// On the new fiber thread, before its start routine: run on the block.
void tls_block_enter(TlsBlock* b) noexcept;
// On the ending fiber thread, still on its block: C++ thread_local destructors.
void tls_run_destructors() noexcept;
// On the ending fiber thread, last: release dlerror's buffer, go back to the OS thread's
// block and free this one.
void tls_block_leave(TlsBlock* b) noexcept;

// After a dlopen or dlclose: copy the images of newly loaded static-TLS modules into the
// live blocks, forget the modules that left.
void tls_after_dlopen() noexcept;

// In a forked child, for fork's caller if it has a block: take the block off the list of
// threads glibc's fork put it on.
void tls_after_fork_child(TlsBlock* mine) noexcept;
// In a forked child: the locks flockfile took on fibers are dropped with their threads.
void forget_file_locks_after_fork() noexcept;

}  // namespace ringlet::patch::detail
