// Closing a descriptor under waiters (gevent's "file descriptor was closed in another
// greenlet"), on every core: close_waiting(). Its callers are net's Socket::close and the
// close/dup2/dup3 hooks of libc built on ringlet. fd_replaced()/fds_replaced(): a close
// (or dup2 over a number) nobody waits on, said so that the engines keep nothing stale.
#include <fcntl.h>
#include <sys/mman.h>

#include "internal/io.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

std::atomic<std::atomic<std::uint32_t>*> g_close_generations{nullptr};
std::atomic<std::uint32_t> g_untracked_closes{0};
std::atomic<bool> g_no_close_table{false};
std::atomic<std::uint32_t> g_range_closes{0};

namespace {
// The table of close generations, mapped on first use: untouched pages cost nothing, and
// zero pages read as generation 0 (what close_generation() answers before the table).
std::atomic<std::uint32_t>* generations() noexcept {
  if (auto* t = g_close_generations.load(std::memory_order_acquire)) return t;
  void* p = ::mmap(nullptr, sizeof(std::atomic<std::uint32_t>) * kCloseTableFds,
                   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;  // then every descriptor shares g_untracked_closes
  std::atomic<std::uint32_t>* expected = nullptr;
  auto* mine = static_cast<std::atomic<std::uint32_t>*>(p);
  if (!g_close_generations.compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) {
    ::munmap(p, sizeof(std::atomic<std::uint32_t>) * kCloseTableFds);  // another thread won
    return expected;
  }
  return mine;
}
}  // namespace

namespace {
void bump_generation(int fd) noexcept {
  std::atomic<std::uint32_t>* t = fd < kCloseTableFds ? generations() : nullptr;
  if (t) {
    t[fd].fetch_add(1, std::memory_order_release);
  } else {
    if (fd < kCloseTableFds) g_no_close_table.store(true, std::memory_order_release);
    g_untracked_closes.fetch_add(1, std::memory_order_release);
  }
}
}  // namespace

void fd_replaced(int fd) noexcept {
  if (fd < 0) return;
  bump_generation(fd);
  if (Scheduler* s = Scheduler::current()) s->reactor().forget_fd(fd);
}

void fds_replaced(unsigned first, unsigned last) noexcept {
  if (first > last) return;
  g_range_closes.fetch_add(1, std::memory_order_release);
  if (Scheduler* s = Scheduler::current()) s->reactor().forget_fds(first, last);
}

void close_waiting(int fd) noexcept {
  if (fd < 0) return;
  // First the generation, then the cancellations: a waiter that ends with -ECANCELED reads
  // it after its wake-up and knows its descriptor is gone.
  bump_generation(fd);
  Scheduler* s = Scheduler::current();
  if (!s) return;  // a plain thread: no reactor of ours to ask
  s->reactor().cancel_fd(fd);
  // Other cores' waiters, through their loops, with a duplicate that keeps the open file
  // (which io_uring matches) alive until each has cancelled.
  CoreGroup* g = s->group();
  if (!g) return;
  for (Scheduler* other : g->scheds) {
    if (other == s) continue;
    const int dup = sys::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) continue;  // out of descriptors: that core's waiters run on
    try {
      other->post_call([other, dup, fd] {
        other->reactor().cancel_file(dup, fd);
        sys::close(dup);
      });
    } catch (...) {
      sys::close(dup);
    }
  }
}

}  // namespace ringlet::detail
