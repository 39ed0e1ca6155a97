// flockfile / ftrylockfile / funlockfile between fiber threads with TLS blocks of their own.
//
// glibc's FILE lock is recursive and owned by THREAD_SELF, which a fiber thread's own block
// names: a thread that parks while it holds the lock (flockfile, a write, usleep, a write,
// funlockfile) would make any other fiber of its OS thread that prints to that FILE wait on
// the lock's futex in the kernel, and the owner could never run again to release it. So on
// a fiber, once fiber threads have blocks of their own, these calls take a lock of ours
// per FILE, which parks the fiber that waits for it, and leave glibc's lock to the single
// stdio calls. What this gives up: a single printf from another thread is not held back
// while a flockfile section of a fiber runs (it may land inside it, as in earlier
// versions); flockfile sections exclude each other. Making every stdio call fiber-aware is
// the work on stdio (issue 20).
#include <stdio.h>

#include "common.hpp"
#include "tls.hpp"

namespace ringlet::patch::detail {
namespace {

struct FileLock {
  FILE* fp;
  const void* owner;  // the fiber holding it
  unsigned depth;
  WaitList waiters;
  FileLock* next;
};

SpinLock g_files_mu;
FileLock* g_files = nullptr;  // locks held or waited for (a handful)

FileLock* find(FILE* fp) noexcept {
  for (FileLock* l = g_files; l; l = l->next)
    if (l->fp == fp) return l;
  return nullptr;
}

void drop_if_idle(FileLock* l) noexcept {  // under g_files_mu
  if (l->depth || !l->waiters.empty()) return;
  for (FileLock** p = &g_files; *p; p = &(*p)->next) {
    if (*p == l) {
      *p = l->next;
      delete l;
      return;
    }
  }
}

bool ours() noexcept { return tls_blocks_in_use() && ringlet::detail::current_fiber() != nullptr; }

// 0 taken, EBUSY held by another (try only), ENOMEM.
int take(FILE* fp, bool try_only) noexcept {
  const void* me = ringlet::detail::current_fiber();
  g_files_mu.lock();
  FileLock* l = find(fp);
  if (!l) {
    l = new (std::nothrow) FileLock{fp, nullptr, 0, {}, g_files};
    if (!l) {
      g_files_mu.unlock();
      return ENOMEM;
    }
    g_files = l;
  }
  while (l->depth && l->owner != me) {
    if (try_only) {
      g_files_mu.unlock();
      return EBUSY;
    }
    Waiter w;
    w.arm();
    l->waiters.push(&w);
    wait_on(g_files_mu, l->waiters, w, Deadline::never(), "flockfile (patched)");
  }
  l->owner = me;
  ++l->depth;
  g_files_mu.unlock();
  return 0;
}

// false if the caller holds no lock of ours on fp.
bool give(FILE* fp) noexcept {
  const void* me = ringlet::detail::current_fiber();
  g_files_mu.lock();
  FileLock* l = find(fp);
  if (!l || !l->depth || l->owner != me) {
    g_files_mu.unlock();
    return false;
  }
  if (--l->depth == 0) {
    l->owner = nullptr;
    l->waiters.grant_one();
    drop_if_idle(l);
  }
  g_files_mu.unlock();
  return true;
}

}  // namespace

void forget_file_locks_after_fork() noexcept {
  // The threads that held them are gone; their waiters too. (Left allocated: a child that
  // forked from a threaded parent should exec or _exit.)
  g_files = nullptr;
  new (&g_files_mu) SpinLock;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK void flockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(ours()) && take(fp, false) == 0) return;
  RINGLET_REAL(flockfile)(fp);
}

RINGLET_HOOK int ftrylockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(ours())) {
    const int e = take(fp, true);
    if (e != ENOMEM) return e ? -1 : 0;
  }
  return RINGLET_REAL(ftrylockfile)(fp);
}

RINGLET_HOOK void funlockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(ours()) && give(fp)) return;
  RINGLET_REAL(funlockfile)(fp);
}
