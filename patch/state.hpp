// The patch layer's shared internals: the real libc functions, the groups in force, the
// counters, the descriptor table, the signal bookkeeping and the wait helpers every hook
// uses. Nothing here throws: no exception may cross into the C code that called a hook.
#pragma once

#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ringlet/patch.hpp"
#include "internal/io.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"
#include "ringlet/detail/wait.hpp"

#define RINGLET_HOOK extern "C" __attribute__((visibility("default")))
// The part of a hook that runs on a fiber: out of line, so the pass-through path stays a
// handful of instructions (no registers to save).
#define RINGLET_SLOW __attribute__((noinline, cold))
#define RINGLET_LIKELY(x) __builtin_expect(!!(x), 1)
#define RINGLET_UNLIKELY(x) __builtin_expect(!!(x), 0)
// ThreadSanitizer builds: a hook that TSan's own start-up calls (from the loader, before
// TSan has any thread state) must not be instrumented: its __tsan_func_entry would use that
// missing state. Such a hook calls nothing instrumented either (std::atomic's members are
// out-of-line instrumented functions in a debug build: it uses the __atomic builtins).
#if defined(__SANITIZE_THREAD__)
#define RINGLET_NO_TSAN __attribute__((no_sanitize_thread))
#else
#define RINGLET_NO_TSAN
#endif

namespace ringlet::patch::detail {

using ringlet::detail::Fiber;
using ringlet::detail::IoRequest;
using ringlet::detail::Scheduler;

// --- the real functions ------------------------------------------------------------------
// Looked up with dlsym(RTLD_NEXT) on first use; a hook may run before our constructor.
RINGLET_NO_TSAN void* resolve_next(const char* name) noexcept;

// Nothing instrumented (RINGLET_NO_TSAN, the __atomic builtins rather than std::atomic's
// members): ThreadSanitizer calls some hooks where it has no thread state yet (see below).
#define RINGLET_REAL(fn)                                                                  \
  ([]() noexcept RINGLET_NO_TSAN {                                                        \
    static void* p = nullptr;                                                             \
    void* v = __atomic_load_n(&p, __ATOMIC_RELAXED);                                      \
    if (RINGLET_UNLIKELY(!v))                                                             \
      __atomic_store_n(&p, v = ::ringlet::patch::detail::resolve_next(#fn), __ATOMIC_RELAXED); \
    return reinterpret_cast<decltype(&::fn)>(v);                                          \
  }())

// ThreadSanitizer builds: TSan's start-up (run from the executable's preinit_array, before
// any constructor) calls some hooks, directly or through its interceptors, before it has a
// thread state. Such a hook is RINGLET_NO_TSAN and starts with RINGLET_TSAN_EARLY(fn, args):
// until the patch's first constructor has run it passes the call to the real function, with
// nothing instrumented on the way. (Elsewhere both are nothing.)
#if defined(__SANITIZE_THREAD__)
extern bool g_tsan_started;
#define RINGLET_TSAN_EARLY(fn, ...)                                                               \
  do {                                                                                            \
    if (RINGLET_UNLIKELY(!__atomic_load_n(&::ringlet::patch::detail::g_tsan_started, __ATOMIC_ACQUIRE))) \
      return RINGLET_REAL(fn)(__VA_ARGS__);                                                       \
  } while (0)
#else
#define RINGLET_TSAN_EARLY(fn, ...) \
  do {                              \
  } while (0)
#endif

// --- groups and counters -----------------------------------------------------------------
extern std::atomic<unsigned> g_groups;
extern std::atomic<bool> g_counting;

enum class Call : unsigned {
  sleep, usleep, nanosleep, clock_nanosleep,
  socket, connect, accept, accept4,
  read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto, sendmsg,
  poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
  close, dup, dup2, dup3, fcntl, ioctl, setsockopt,
  getaddrinfo, getnameinfo, gethostbyname, gethostbyname_r,
  pthread_create, pthread_join, pthread_mutex_lock, pthread_cond_wait, pthread_rwlock,
  pthread_barrier_wait, sem_wait, sched_yield, sendfile,
  flock, fcntl_setlkw, lockf, open_fifo, pshared_wait, ipc,
  waitpid, wait4, waitid, system, popen, pclose,
  // stdio (patch/stdio/): FILEs made ours (on_fiber) or left glibc's (passed) by fdopen/fopen;
  // stdio calls that waited for another thread's FILE lock (waited).
  stdio_file, stdio_lock,
  sigwait, sigtimedwait, sigsuspend, pause, recvmmsg, sendmmsg, epoll_pwait2, splice, tee,
  count_
};
const char* call_name(Call c) noexcept;
// RINGLET_PATCH_STATS' report, once per process (at exit or _exit).
void print_stats_now() noexcept;

struct Counter {
  std::atomic<std::uint64_t> on_fiber{0}, waited{0}, passed{0};
};
extern Counter g_counters[static_cast<unsigned>(Call::count_)];

inline void count_passed(Call c) noexcept {
  if (RINGLET_UNLIKELY(g_counting.load(std::memory_order_relaxed)))
    g_counters[static_cast<unsigned>(c)].passed.fetch_add(1, std::memory_order_relaxed);
}
inline void count_on_fiber(Call c) noexcept {
  if (RINGLET_UNLIKELY(g_counting.load(std::memory_order_relaxed)))
    g_counters[static_cast<unsigned>(c)].on_fiber.fetch_add(1, std::memory_order_relaxed);
}
inline void count_waited(Call c) noexcept {
  if (RINGLET_UNLIKELY(g_counting.load(std::memory_order_relaxed)))
    g_counters[static_cast<unsigned>(c)].waited.fetch_add(1, std::memory_order_relaxed);
}

// Off any scheduler (the common case of a program that never runs fibers on this thread):
// count and call libc at once.
#define RINGLET_PASS_IF_PLAIN_THREAD(call, fn, ...)                                  \
  do {                                                                               \
    if (RINGLET_LIKELY(::ringlet::detail::Scheduler::current() == nullptr)) {         \
      ::ringlet::patch::detail::count_passed(::ringlet::patch::detail::Call::call); \
      return RINGLET_REAL(fn)(__VA_ARGS__);                                          \
    }                                                                                \
  } while (0)

// The scheduler and fiber the caller runs on, if it runs on one and `group` is patched.
struct Here {
  Scheduler* s;
  Fiber* f;
  explicit operator bool() const noexcept { return f != nullptr; }
};
inline Here on_fiber(unsigned group) noexcept {
  Scheduler* s = Scheduler::current();
  if (RINGLET_LIKELY(!s)) return {nullptr, nullptr};
  Fiber* f = s->running();
  if (!f || !(g_groups.load(std::memory_order_relaxed) & group)) return {nullptr, nullptr};
  return {s, f};
}

// --- descriptors -------------------------------------------------------------------------
// What the patch knows of each fd, learnt when a hook creates it or on its first use on a
// fiber. O_NONBLOCK is a property of the open file, which dups share and which internal
// libc closes can leave stale here; so a "blocking" entry is checked against the kernel
// before a call is made to wait (see kernel_nonblocking), and only "non-blocking" entries
// are trusted outright (at worst such a call blocks its thread, as unpatched). The exception
// is a private entry (kPrivate, below): its O_NONBLOCK is known without asking.
enum FdBits : std::uint32_t {
  kKnown = 1u << 0,
  kManaged = 1u << 1,      // socket, pipe, FIFO or character device: waits go to the reactor
  kSocket = 1u << 2,
  kStream = 1u << 3,       // SOCK_STREAM socket, pipe, FIFO, tty: blocking writes write all
  kNonblock = 1u << 4,     // the program made it non-blocking: never wait for it
  kSignalfd = 1u << 5,     // a signalfd (managed: its reads wait, see signal_wait.cpp)
  // Made here by a hook that knows its O_NONBLOCK (socket, accept), and since then in no
  // other process (FdState::born is still fd_share_epoch()) and never duplicated: no one
  // but this process, through the fcntl and ioctl hooks, can have changed the flag, so
  // kNonblock is the kernel's answer and kernel_nonblocking asks nothing.
  kPrivate = 1u << 6,
};
// One cache line each: a thread per connection makes neighbouring numbers belong to
// threads of different carriers (each new thread goes to the carrier with the fewest), and
// every wait writes `waiters` twice; entries sharing a line made the two carriers steal it
// from each other at every message.
struct alignas(64) FdState {
  std::atomic<std::uint32_t> bits{0};
  std::atomic<std::int32_t> waiters{0};      // hooks parked on it (close: close_waiting)
  std::atomic<std::int64_t> rcvtimeo_ns{0};  // SO_RCVTIMEO / SO_SNDTIMEO; 0 = none
  std::atomic<std::int64_t> sndtimeo_ns{0};
  // The attempt hint (io.cpp's one_op_attempts), per direction (0 reads, 1 writes): how
  // many blocking calls in a row found nothing to transfer at their non-blocking attempt,
  // or skipped it. Only a guess: any value is correct, it decides where a call first tries.
  std::atomic<std::uint32_t> misses[2] = {0, 0};
  std::atomic<std::uint32_t> born{0};  // fd_share_epoch() before the hook created it
  // The hooks that set O_NONBLOCK for the length of one call (connect, sendfile) count the
  // windows they open and close, never reset (see program_flags).
  std::atomic<std::uint32_t> windows_opened{0};
  std::atomic<std::uint32_t> windows_closed{0};
};
constexpr int kMaxFd = 1 << 20;
// The entry for fd, or null if fd is negative or beyond the table.
FdState* fd_state(int fd) noexcept;
// The entry, classified (fstat, SO_TYPE, F_GETFL) if this is its first use.
FdState* fd_classified(int fd) noexcept;
// Set once the program has set TCP_ULP (kernel TLS: a read stops at a record with more
// queued) or SO_RCVLOWAT above 1 (arrivals below the mark raise no event) on any socket, or
// the patch first saw a socket with either: from then on no read is declared plain
// (IoRequest::plain_reads, io.cpp). Process-wide, because the option belongs to the socket
// and the patch knows numbers: a dup, or a listener's accepted sockets, share it.
extern std::atomic<bool> g_reads_shaped;
// Forget fd (closed), and copy one entry to another (dup).
void fd_forget(int fd) noexcept;
void fd_copy(int from, int to) noexcept;
// fd is being closed where the close hook cannot see it (fclose): as the hook would.
void fd_closing(int fd) noexcept;
// A descriptor a hook made: its kind and O_NONBLOCK (bits), and private (kPrivate) as of
// `epoch`, fd_share_epoch() read before the call that created it.
void fd_set_created(int fd, std::uint32_t bits, std::uint32_t epoch) noexcept;
// Whether fd's open file is non-blocking: a private entry's kNonblock, else program_flags
// (which also sets kNonblock when it finds the flag).
bool kernel_nonblocking(int fd, FdState* st) noexcept;
// A hook's own O_NONBLOCK window (connect and sendfile make a blocking socket non-blocking
// for their call, on one carrier): opened before the flag is set, closed after it is
// restored.
void nonblock_window_open(FdState* st) noexcept;
void nonblock_window_close(FdState* st) noexcept;
// F_GETFL of fd as the program set it (-1 and errno as fcntl): an O_NONBLOCK read while a
// hook's window may have been open on another carrier is the hook's, not the program's,
// and left out, unless the program set it through the hooks (kNonblock). Every F_GETFL of
// the patch and of the program (the fcntl hook) goes through it: a read that took the
// hook's flag for the program's answered EAGAIN, and kNonblock kept from it made every
// later call on the descriptor block its carrier.
int program_flags(int fd, FdState* st) noexcept;

// The epoch of descriptor sharing: moved on (before and after) each process this one creates
// (fork and vfork through pthread_atfork; posix_spawn, system, popen in their hooks), and
// when O_NONBLOCK changes on a descriptor that is not private (it may be a duplicate the
// patch never saw of a private one). A private entry born in an earlier epoch is private no
// more. Moved on before *and* after a fork: a descriptor created while the fork runs reads
// the epoch before its creation, so it is either in no child or born before the second move.
std::uint32_t fd_share_epoch() noexcept;
void fd_share_epoch_advance() noexcept;
// The descriptors a message carries (SCM_RIGHTS): sent ones may be another process's from
// now on (private no more, marked before the send); received ones are new open files here,
// whatever the entry of their number still says (forgotten).
void fds_sent(const msghdr* m) noexcept;
void fds_received(const msghdr* m) noexcept;
// The entry of fd if a call on it should wait on the reactor (a socket, pipe, FIFO or
// terminal left blocking; a signalfd has its own path), else null.
inline FdState* managed_fd(int fd) noexcept {
  FdState* st = fd_classified(fd);
  if (!st) return nullptr;
  const std::uint32_t b = st->bits.load(std::memory_order_relaxed);
  return (b & (kManaged | kNonblock | kSignalfd)) == kManaged ? st : nullptr;
}

// --- signals -----------------------------------------------------------------------------
// Counted by the handler trampoline for the thread a caught signal is handled for: every
// caught signal, and those whose handler lacks SA_RESTART. A fiber thread has its own
// (ThreadRec::sig_counts); main, ringlet's own fibers and the scheduler share the carrier's.
struct SignalCounts {
  unsigned all = 0;
  unsigned no_restart = 0;
};
// The calling thread's counts. A fiber thread first runs the handlers of signals that wait
// for it and its mask accepts (thread/signal_route.cpp): a hook that compares the counts
// before and after a wait sees them, and answers EINTR or restarts as SA_RESTART says.
SignalCounts& thread_signals() noexcept;
// The carrier's own counts (main's).
SignalCounts& carrier_signals() noexcept;
// True while a program's signal handler runs on this thread (under our trampoline).
bool in_signal_handler() noexcept;
// thread/signal_route.cpp: for the trampoline, which thread a caught signal is handled for.
// true: run the handler now, counted in *counts (the interrupted fiber thread's if it
// accepts the signal, else main's); false: it was left for a fiber thread that accepts it
// (it runs at that thread's next hook; the caller interrupts the parked waits).
bool signal_taker(int sig, const siginfo_t* si, SignalCounts** counts) noexcept;
// A signal sent to the calling thread (a fiber thread's pthread_kill or tgkill, or main's
// tgkill while main blocked it) that is in `set`: taken, its number returned and *info
// filled (if info); 0 if none.
int take_own_pending(const sigset_t& set, siginfo_t* info) noexcept;
// Main changed its mask (or waits with another): re-send it what it now accepts.
void deliver_main_pending(const sigset_t& main_mask) noexcept;
// signal_wait.cpp: fiber threads' masks and the fibers waiting for signals arbitrate the
// carrier's mask; while any does (g_mask_waits != 0: from the first pthread_create on a
// fiber on, or during a wait), main's pthread_sigmask goes through carrier_sigmask (an errno
// value), which keeps main's own mask as bookkeeping.
extern std::atomic<int> g_mask_waits;
int carrier_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept;
// A read of a blocking signalfd on a fiber (io.cpp's read hook).
long signalfd_read(FdState* st, int fd, void* buf, std::size_t n) noexcept;
// While the calling fiber waits with `mask` as its signal mask (sigsuspend, pause, ppoll,
// pselect, epoll_pwait; null: no change): its mask (a fiber thread's, or main's) is `mask`,
// and the old one is put back at the end of the scope. A pending signal it unblocks runs
// its handler in the constructor.
class WaitMask {
 public:
  explicit WaitMask(const sigset_t* mask) noexcept;
  ~WaitMask();
  WaitMask(const WaitMask&) = delete;
  WaitMask& operator=(const WaitMask&) = delete;

 private:
  bool on_ = false;
  void* rec_ = nullptr;  // the fiber thread waiting (a ThreadRec), null for main
  sigset_t saved_{};
};

// --- waiting -----------------------------------------------------------------------------
// How a wait ended is the runtime's Woke; a hook turns it into its libc answer with
// woke_errno(), the one table.
using ringlet::detail::IoOutcome;
using ringlet::detail::Woke;

// Close a descriptor of the patch's own (a pidfd, a signalfd, a watcher's eventfd, a poll's
// epoll set, a spawn's pipe) as the close hook would: the engines forget the number first
// (perform_patched tells them every close of a waited-on descriptor is said).
inline void close_own(int fd) noexcept {
  ringlet::detail::fd_replaced(fd);
  ringlet::detail::sys::close(fd);
}

// The runtime's perform (detail/io.hpp) for a hook on a fiber: a signal handler may end the
// wait (Woke::Interrupted), and the fd's waiters are counted so that close knows to call
// close_waiting. Deadline d (never: none), the fiber's scoped Timeout applying too. A
// killed fiber keeps its kill pending for the next C++ switch point.
IoOutcome perform_patched(const IoRequest& req, ringlet::Deadline d) noexcept;
// Sleep until d.
Woke timed_sleep(Here h, ringlet::Deadline d) noexcept;
// Wait until one of the fds is ready for its events or d passes; the caller then asks the
// kernel again. One fd: a poll on the reactor; several: a temporary epoll set, itself
// polled on the reactor. Notified with res = -ENOMEM if no descriptor is left for the set.
IoOutcome wait_fds(Here h, const pollfd* fds, std::size_t n, ringlet::Deadline d) noexcept;

// errno for a wait that did not end Notified: the call's own deadline EAGAIN (SO_RCVTIMEO's
// answer; a caller may have another), an enclosing Timeout ETIMEDOUT, a kill or a signal
// EINTR, the deadlock breaker ENOMEM.
int woke_errno(Woke w) noexcept;

// Whole-binary mode: where pthread_exit on the main fiber unwinds to (start.cpp).
void set_main_exit(void* jmpbuf, void* body) noexcept;
// Called by main's fiber as it starts (whole-binary mode): main gets a CPU clock of its own,
// apart from the fiber threads' (thread/cpu_clock.cpp); nothing if the thread group is off.
void start_main_cpu_clock() noexcept;
// The CPU time (ns) on clock c if it is another fiber thread's (or main's, from a fiber
// thread): true. False for every other clock, the caller's own included.
bool other_fiber_cpu_clock_ns(clockid_t c, std::uint64_t* ns) noexcept;

// A deadline from a relative timespec / timeval / milliseconds (negative: never).
ringlet::Deadline deadline_after_ns(std::int64_t ns) noexcept;
// The deadline of a descriptor's SO_RCVTIMEO / SO_SNDTIMEO (0: none).
inline ringlet::Deadline timeout_of(const std::atomic<std::int64_t>& ns) noexcept {
  const std::int64_t v = ns.load(std::memory_order_relaxed);
  return v > 0 ? deadline_after_ns(v) : ringlet::Deadline::never();
}

}  // namespace ringlet::patch::detail
