// stdio's FILE locks between threads: flockfile / ftrylockfile / funlockfile, and the lock
// every stdio hook of patch/stdio/ takes.
//
// glibc's FILE lock is recursive and owned by THREAD_SELF, and waits with a raw futex: a
// fiber thread that parks while it holds it (flockfile, a write, usleep, a write,
// funlockfile; or a read parked inside fgets) would make any other fiber of its OS thread
// that uses that FILE wait in the kernel, and the owner could never run again to release
// it. So:
// - our FILEs (sockets, pipes, terminals: patch/stdio/stdio.hpp) never take glibc's lock
//   (_IO_USER_LOCK); each carries a StdioLock that every stdio call on it and flockfile
//   take, fibers and plain threads alike (a fiber parks for it, a plain thread sleeps);
// - other FILEs keep glibc's lock inside single calls; on a fiber, flockfile takes a
//   StdioLock of ours for the FILE (made on demand, kept in a short list while held or
//   waited for) and counts the region in g_stdio.regions; while any region is held, the
//   stdio hooks on fibers take that FILE's lock around their call, so another thread's
//   printf waits for the region to end, as natively.
#include <stdio.h>

#include <cerrno>
#include <new>

#include "../stdio/stdio.hpp"
#include "common.hpp"
#include "tls.hpp"

namespace ringlet::patch::detail {

const void* stdio_me() noexcept { return ringlet::detail::self_identity(); }

// Handed over in FIFO order: the thread that gives the lock back with others waiting gives
// it to the first of them (who wakes owning it), so a thread that parks inside the FILE and
// takes it again at once cannot keep the others out for good.
bool take_lock(StdioLock& l, bool try_only, bool* waited) noexcept {
  const void* me = stdio_me();
  l.mu.lock();
  if (l.depth == 0) {
    l.owner = me;
    l.depth = 1;
  } else if (l.owner == me) {
    ++l.depth;
  } else if (try_only) {
    l.mu.unlock();
    return false;
  } else {
    do {
      Waiter w;
      w.arm();
      w.slot = const_cast<void*>(me);
      l.waiters.push(&w);
      wait_on(l.mu, l.waiters, w, Deadline::never(), "stdio FILE lock (patched)");
      if (waited) *waited = true;
    } while (l.owner != me);  // (granted: give_lock made it ours, depth 1)
  }
  l.mu.unlock();
  return true;
}

void give_lock(StdioLock& l) noexcept {
  const void* me = stdio_me();
  l.mu.lock();
  if (l.depth && l.owner == me && --l.depth == 0) {
    if (Waiter* w = l.waiters.grant_one()) {
      l.owner = w->slot;
      l.depth = 1;
    } else {
      l.owner = nullptr;
    }
  }
  l.mu.unlock();
}

namespace {

// Locks of FILEs not ours, while held or waited for (a handful).
struct FileLock {
  FILE* fp;
  StdioLock lock;
  unsigned users;  // threads inside take_listed for it, or holding it
  FileLock* next;
};

SpinLock g_files_mu;
FileLock* g_files = nullptr;

FileLock* find(FILE* fp) noexcept {
  for (FileLock* l = g_files; l; l = l->next)
    if (l->fp == fp) return l;
  return nullptr;
}

// 0 taken, EBUSY held by another (try only), ENOMEM.
int take_listed(FILE* fp, bool try_only, bool* waited) noexcept {
  g_files_mu.lock();
  FileLock* l = find(fp);
  if (!l) {
    l = new (std::nothrow) FileLock{fp, {}, 0, g_files};
    if (!l) {
      g_files_mu.unlock();
      return ENOMEM;
    }
    g_files = l;
  }
  ++l->users;
  g_files_mu.unlock();
  if (take_lock(l->lock, try_only, waited)) return 0;
  g_files_mu.lock();
  --l->users;
  g_files_mu.unlock();
  return EBUSY;
}

// false if the caller holds no lock of ours on fp.
bool give_listed(FILE* fp) noexcept {
  const void* me = stdio_me();
  g_files_mu.lock();
  FileLock* l = find(fp);
  if (!l || l->lock.owner != me || !l->lock.depth) {
    g_files_mu.unlock();
    return false;
  }
  g_files_mu.unlock();
  give_lock(l->lock);
  g_files_mu.lock();
  if (--l->users == 0) {
    for (FileLock** p = &g_files; *p; p = &(*p)->next) {
      if (*p == l) {
        *p = l->next;
        delete l;
        break;
      }
    }
  }
  g_files_mu.unlock();
  return true;
}

inline bool on_a_fiber() noexcept { return ringlet::detail::current_fiber() != nullptr; }

}  // namespace

bool stdio_enter(FILE* fp) noexcept {
  const int e = errno;
  bool waited = false;
  bool held = false;
  if (stdio_ours(fp)) {
    held = take_lock(cookie_of(fp)->lock, false, &waited);
  } else if (on_a_fiber() && g_stdio.regions.load(std::memory_order_relaxed) != 0) {
    held = take_listed(fp, false, &waited) == 0;
  }
  if (waited) count_waited(Call::stdio_lock);
  errno = e;
  return held;
}

void stdio_leave(FILE* fp) noexcept {
  const int e = errno;
  if (stdio_ours(fp)) give_lock(cookie_of(fp)->lock);
  else give_listed(fp);
  errno = e;
}

void stdio_leave_foreign(FILE* fp) noexcept {
  const int e = errno;
  give_listed(fp);
  errno = e;
}

void forget_file_locks_after_fork() noexcept {
  // The threads that held them are gone; their waiters too. The caller's own regions stay
  // (its funlockfile ends them). (The others are left allocated: a child that forked from a
  // threaded parent should exec or _exit.)
  const void* me = stdio_me();
  FileLock* kept = nullptr;
  int regions = 0;
  for (FileLock* l = g_files; l;) {
    FileLock* next = l->next;
    if (l->lock.depth && l->lock.owner == me) {
      new (&l->lock.mu) SpinLock;
      new (&l->lock.waiters) ringlet::detail::WaitList;
      l->users = l->lock.depth;
      regions += static_cast<int>(l->lock.depth);
      l->next = kept;
      kept = l;
    }
    l = next;
  }
  g_files = kept;
  new (&g_files_mu) SpinLock;
  g_stdio.regions.store(regions, std::memory_order_relaxed);
  stdio_forget_after_fork();
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK void flockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(stdio_ours(fp))) {
    take_lock(cookie_of(fp)->lock, false);
    return;
  }
  if (RINGLET_UNLIKELY(on_a_fiber()) && take_listed(fp, false, nullptr) == 0) {
    g_stdio.regions.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  RINGLET_REAL(flockfile)(fp);
}

RINGLET_HOOK int ftrylockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(stdio_ours(fp))) return take_lock(cookie_of(fp)->lock, true) ? 0 : -1;
  if (RINGLET_UNLIKELY(on_a_fiber())) {
    const int e = take_listed(fp, true, nullptr);
    if (e == 0) g_stdio.regions.fetch_add(1, std::memory_order_relaxed);
    if (e != ENOMEM) return e ? -1 : 0;
  }
  return RINGLET_REAL(ftrylockfile)(fp);
}

RINGLET_HOOK void funlockfile(FILE* fp) {
  if (RINGLET_UNLIKELY(stdio_ours(fp))) {
    give_lock(cookie_of(fp)->lock);
    return;
  }
  if (RINGLET_UNLIKELY(on_a_fiber()) && give_listed(fp)) {
    g_stdio.regions.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  RINGLET_REAL(funlockfile)(fp);
}
