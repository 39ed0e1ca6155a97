// The patch layer's state and the waits every hook shares: groups, counters, the descriptor
// table, the signal trampoline that turns a caught signal into EINTR for parked calls, and
// the reactor waits themselves.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <string>
#include <string_view>

#include <sys/ioctl.h>

#include "internal/dump.hpp"
#include "internal/io.hpp"
#include "internal/sys.hpp"
#include "internal/thread_pointer.hpp"
#include "ringlet/stats.hpp"
#include "state.hpp"

namespace ringlet::patch {

namespace detail {

std::atomic<unsigned> g_groups{All};
std::atomic<bool> g_counting{false};
Counter g_counters[static_cast<unsigned>(Call::count_)];

#if defined(__SANITIZE_THREAD__)
bool g_tsan_started = false;  // set by init_patch (RINGLET_TSAN_EARLY)
#endif

RINGLET_NO_TSAN void* resolve_next(const char* name) noexcept {
  void* p = ::dlsym(RTLD_NEXT, name);
  if (!p) {
    // Nothing after us defines it (cannot happen for libc's own calls): say so and stop
    // rather than jump to null.
    char msg[160];
    int n = std::snprintf(msg, sizeof msg, "ringlet patch: no real '%s' to call\n", name);
    ringlet::detail::sys::write(2, msg, static_cast<std::size_t>(n));
    std::abort();
  }
  return p;
}

const char* call_name(Call c) noexcept {
  static const char* const names[] = {
      "sleep", "usleep", "nanosleep", "clock_nanosleep",
      "socket", "connect", "accept", "accept4",
      "read", "write", "readv", "writev", "recv", "recvfrom", "recvmsg", "send", "sendto", "sendmsg",
      "poll", "ppoll", "select", "pselect", "epoll_wait", "epoll_pwait",
      "close", "dup", "dup2", "dup3", "fcntl", "ioctl", "setsockopt",
      "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_r",
      "pthread_create", "pthread_join", "pthread_mutex_lock", "pthread_cond_wait", "pthread_rwlock",
      "pthread_barrier_wait", "sem_wait", "sched_yield", "sendfile",
      "flock", "fcntl_setlkw", "lockf", "open_fifo", "pshared_wait", "ipc",
      "waitpid", "wait4", "waitid", "system", "popen", "pclose",
      "stdio_file", "stdio_lock",
      "sigwait", "sigtimedwait", "sigsuspend", "pause", "recvmmsg", "sendmmsg", "epoll_pwait2",
      "splice", "tee",
  };
  static_assert(sizeof names / sizeof names[0] == static_cast<unsigned>(Call::count_));
  return names[static_cast<unsigned>(c)];
}

// --- descriptors -------------------------------------------------------------------------

namespace {
FdState* g_table = nullptr;  // kMaxFd entries, reserved once, committed page by page
std::once_flag g_table_once;

FdState* table() noexcept {
  if (RINGLET_LIKELY(g_table != nullptr)) return g_table;
  std::call_once(g_table_once, [] {
    void* p = ::mmap(nullptr, sizeof(FdState) * kMaxFd, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      const char msg[] = "ringlet patch: cannot reserve the descriptor table\n";
      ringlet::detail::sys::write(2, msg, sizeof msg - 1);
      std::abort();
    }
    // Zero pages are a valid "unknown" entry for every field: no construction needed.
    __atomic_store_n(&g_table, static_cast<FdState*>(p), __ATOMIC_RELEASE);
  });
  return __atomic_load_n(&g_table, __ATOMIC_ACQUIRE);
}
}  // namespace

FdState* fd_state(int fd) noexcept {
  if (fd < 0 || fd >= kMaxFd) return nullptr;
  return &table()[fd];
}

FdState* fd_classified(int fd) noexcept {
  FdState* st = fd_state(fd);
  if (!st) return nullptr;
  if (st->bits.load(std::memory_order_relaxed) & kKnown) return st;
  struct stat sb;
  std::uint32_t bits = kKnown;
  if (::fstat(fd, &sb) == 0) {
    if (S_ISSOCK(sb.st_mode)) {
      bits |= kManaged | kSocket;
      int type = 0;
      socklen_t len = sizeof type;
      if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM) {
        bits |= kStream;
        // Inherited or passed to us: whatever the program set before we saw it.
        if (ringlet::detail::reads_shaped(fd)) g_reads_shaped.store(true, std::memory_order_relaxed);
      }
    } else if (S_ISFIFO(sb.st_mode)) {
      bits |= kManaged | kStream;
    } else if (S_ISCHR(sb.st_mode)) {
      // Terminals wait; other devices (/dev/null, /dev/urandom...) answer at once.
      termios t;
      if (::syscall(SYS_ioctl, fd, TCGETS, &t) == 0) bits |= kManaged | kStream;
    } else if ((sb.st_mode & S_IFMT) == 0) {
      // An anonymous inode (eventfd, epoll, timerfd...): only a signalfd's reads wait here.
      char path[40], link[32];
      std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
      const ssize_t k = ::readlink(path, link, sizeof link - 1);
      if (k > 0 && std::string_view(link, static_cast<std::size_t>(k)) == "anon_inode:[signalfd]")
        bits |= kManaged | kSignalfd;
    }
    int fl = program_flags(fd, st);
    if (fl >= 0 && (fl & O_NONBLOCK)) bits |= kNonblock;
  } else {
    return st;  // EBADF and the like: not cached; the real call will say so
  }
  st->bits.store(bits, std::memory_order_relaxed);
  return st;
}

std::atomic<bool> g_reads_shaped{false};

void fd_forget(int fd) noexcept {
  if (FdState* st = fd_state(fd)) {
    st->bits.store(0, std::memory_order_relaxed);
    st->rcvtimeo_ns.store(0, std::memory_order_relaxed);
    st->sndtimeo_ns.store(0, std::memory_order_relaxed);
    for (auto& m : st->misses) m.store(0, std::memory_order_relaxed);
  }
}

void fd_copy(int from, int to) noexcept {
  FdState* a = fd_state(from);
  FdState* b = fd_state(to);
  if (!b) return;
  if (!a) {
    fd_forget(to);
    return;
  }
  // Two numbers for one open file: O_NONBLOCK set through either changes both, and the hooks
  // note it on one. Neither is private any more.
  a->bits.fetch_and(~static_cast<std::uint32_t>(kPrivate), std::memory_order_relaxed);
  b->bits.store(a->bits.load(std::memory_order_relaxed), std::memory_order_relaxed);
  b->rcvtimeo_ns.store(a->rcvtimeo_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
  b->sndtimeo_ns.store(a->sndtimeo_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void fd_set_created(int fd, std::uint32_t bits, std::uint32_t epoch) noexcept {
  if (FdState* st = fd_state(fd)) {
    st->born.store(epoch, std::memory_order_relaxed);
    st->bits.store(bits | kKnown | kPrivate, std::memory_order_relaxed);
    st->rcvtimeo_ns.store(0, std::memory_order_relaxed);
    st->sndtimeo_ns.store(0, std::memory_order_relaxed);
    for (auto& m : st->misses) m.store(0, std::memory_order_relaxed);
  }
}

namespace {
std::atomic<std::uint32_t> g_share_epoch{0};

void advance_epoch() noexcept { fd_share_epoch_advance(); }
__attribute__((constructor)) void register_share_epoch() {
  // Before and after the fork, in the parent (the child inherits the first move).
  ::pthread_atfork(&advance_epoch, &advance_epoch, nullptr);
}

// The descriptors of m's SCM_RIGHTS messages, each given to fn.
template <class Fn>
void each_passed_fd(const msghdr* m, Fn fn) noexcept {
  if (!m || !m->msg_control || m->msg_controllen < sizeof(cmsghdr)) return;
  for (const cmsghdr* c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(const_cast<msghdr*>(m), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0)) continue;
    const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (std::size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
      fn(fd);
    }
  }
}
}  // namespace

std::uint32_t fd_share_epoch() noexcept { return g_share_epoch.load(std::memory_order_acquire); }
void fd_share_epoch_advance() noexcept { g_share_epoch.fetch_add(1, std::memory_order_acq_rel); }

void fds_sent(const msghdr* m) noexcept {
  each_passed_fd(m, [](int fd) {
    if (FdState* st = fd_state(fd)) st->bits.fetch_and(~static_cast<std::uint32_t>(kPrivate), std::memory_order_relaxed);
  });
}

void fds_received(const msghdr* m) noexcept {
  each_passed_fd(m, [](int fd) { fd_forget(fd); });
}

bool kernel_nonblocking(int fd, FdState* st) noexcept {
  if (st) {
    const std::uint32_t b = st->bits.load(std::memory_order_relaxed);
    if ((b & kPrivate) && st->born.load(std::memory_order_relaxed) == fd_share_epoch()) return (b & kNonblock) != 0;
  }
  int fl = program_flags(fd, st);
  if (fl < 0 || !(fl & O_NONBLOCK)) return false;
  if (st) st->bits.fetch_or(kNonblock, std::memory_order_relaxed);
  return true;
}

void nonblock_window_open(FdState* st) noexcept { st->windows_opened.fetch_add(1, std::memory_order_seq_cst); }
void nonblock_window_close(FdState* st) noexcept { st->windows_closed.fetch_add(1, std::memory_order_seq_cst); }

// A flag seen set by a window's F_SETFL was set after the window was counted open and is
// restored before it is counted closed: so when it is seen, the windows opened by the read's
// end outnumber those closed by its start.
int program_flags(int fd, FdState* st) noexcept {
  if (!st) return ringlet::detail::sys::fcntl(fd, F_GETFL);
  const std::uint32_t closed = st->windows_closed.load(std::memory_order_seq_cst);
  int fl = ringlet::detail::sys::fcntl(fd, F_GETFL);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (fl >= 0 && (fl & O_NONBLOCK) && st->windows_opened.load(std::memory_order_seq_cst) != closed &&
      !(st->bits.load(std::memory_order_relaxed) & kNonblock))
    fl &= ~O_NONBLOCK;
  return fl;
}

// --- signals -----------------------------------------------------------------------------

namespace {
__thread SignalCounts t_signals __attribute__((tls_model("initial-exec")));
__thread int t_handler_depth __attribute__((tls_model("initial-exec"))) = 0;

// The program's handler for each signal whose handler we wrapped.
struct Slot {
  std::atomic<void*> fn{nullptr};
  std::atomic<int> flags{0};
};
Slot g_slots[NSIG];
std::mutex g_sig_mu;

void trampoline(int sig, siginfo_t* si, void* uc) {
  const int saved = errno;
  Slot& slot = g_slots[sig];
  const int flags = slot.flags.load(std::memory_order_relaxed);
  // Fibers of this thread parked in hooks look at their thread's counts (EINTR, a restart
  // as SA_RESTART says, or a signal left for them to take): the scheduler ends their waits
  // at the top of its next pass.
  ringlet::detail::interrupt_waits();
  SignalCounts* counts = nullptr;
  if (!signal_taker(sig, si, &counts)) {  // left for a fiber thread that accepts it
    errno = saved;
    return;
  }
  ++counts->all;
  if (!(flags & SA_RESTART)) ++counts->no_restart;
  errno = saved;
  void* fn = slot.fn.load(std::memory_order_relaxed);
  ++t_handler_depth;
  if (flags & SA_SIGINFO) reinterpret_cast<void (*)(int, siginfo_t*, void*)>(fn)(sig, si, uc);
  else reinterpret_cast<void (*)(int)>(fn)(sig);
  --t_handler_depth;
}

bool is_trampoline(const struct sigaction& sa) noexcept {
  return (sa.sa_flags & SA_SIGINFO) && sa.sa_sigaction == &trampoline;
}

}  // namespace

// Main's (and the scheduler's, and ringlet's own fibers'): per OS thread, so a fiber
// thread's own TLS block does not hide them.
SignalCounts& carrier_signals() noexcept { return ringlet::detail::carrier_local(t_signals); }
bool in_signal_handler() noexcept { return t_handler_depth > 0; }

// sigaction with the handler wrapped (called by the hooks below).
int wrapped_sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  auto real = RINGLET_REAL(sigaction);
  if (sig <= 0 || sig >= NSIG) return real(sig, act, old);
  std::lock_guard<std::mutex> lock(g_sig_mu);
  struct sigaction cur {};
  if (real(sig, nullptr, &cur) != 0) return -1;
  Slot& slot = g_slots[sig];
  struct sigaction shown = cur;
  if (ringlet::detail::is_dump_signal_handler(cur)) {  // the runtime's fiber dump: shown as what it replaced
    shown = {};
    shown.sa_handler = SIG_DFL;
    sigemptyset(&shown.sa_mask);
  }
  if (is_trampoline(cur)) {  // show the program its own handler, not ours
    const int flags = slot.flags.load(std::memory_order_relaxed);
    shown.sa_flags = flags;
    if (flags & SA_SIGINFO)
      shown.sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(slot.fn.load());
    else
      shown.sa_handler = reinterpret_cast<void (*)(int)>(slot.fn.load());
  }
  if (act) {
    void* fn = (act->sa_flags & SA_SIGINFO) ? reinterpret_cast<void*>(act->sa_sigaction)
                                            : reinterpret_cast<void*>(act->sa_handler);
    const bool plain = fn == reinterpret_cast<void*>(SIG_DFL) || fn == reinterpret_cast<void*>(SIG_IGN);
    if (plain) {
      if (real(sig, act, nullptr) != 0) return -1;
    } else {
      slot.fn.store(fn);
      slot.flags.store(act->sa_flags);
      struct sigaction mine = *act;
      mine.sa_sigaction = &trampoline;
      mine.sa_flags = act->sa_flags | SA_SIGINFO;
      if (real(sig, &mine, nullptr) != 0) return -1;
    }
  }
  if (old) *old = shown;
  return 0;
}

// --- waiting -----------------------------------------------------------------------------

IoOutcome perform_patched(const IoRequest& req, ringlet::Deadline d) noexcept {
  FdState* st = fd_state(req.fd);
  if (st) st->waiters.fetch_add(1, std::memory_order_relaxed);
  IoOutcome r;
  {
    ringlet::detail::InterruptScope scope;
    IoRequest q = req;
    q.closes_seen = true;  // the close/dup2/dup3/close_range/closefrom/fclose hooks say each
    r = ringlet::detail::perform(q, d);
  }
  if (st) st->waiters.fetch_sub(1, std::memory_order_relaxed);
  return r;
}

Woke timed_sleep(Here h, ringlet::Deadline d) noexcept {
  (void)h;
  for (;;) {
    if (d.passed()) return Woke::Deadline;
    ringlet::detail::Waiter w;
    w.arm();
    ringlet::detail::WaitSpec spec;
    spec.what = "sleep (patched)";
    spec.kind = ringlet::detail::WaitKind::Sleep;
    spec.deadline = d;
    Woke r;
    {
      ringlet::detail::InterruptScope scope;
      r = ringlet::detail::wait(w, spec);  // nobody wakes it: it ends at d, or is ended
    }
    if (r != Woke::Notified) return r;
  }
}

IoOutcome wait_fds(Here h, const pollfd* fds, std::size_t n, ringlet::Deadline d) noexcept {
  std::size_t live = 0;
  const pollfd* one = nullptr;
  for (std::size_t i = 0; i < n; ++i)
    if (fds[i].fd >= 0) ++live, one = &fds[i];
  if (live == 0) return {0, timed_sleep(h, d)};  // poll(NULL, 0, t): a sleep
  if (live == 1)
    return perform_patched(ringlet::detail::poll_request(one->fd, one->events, "poll (patched)"), d);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return {-ENOMEM, Woke::Notified};  // out of descriptors
  for (std::size_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    epoll_event ev{};
    const short e = fds[i].events;
    ev.events = ((e & POLLIN) ? EPOLLIN : 0u) | ((e & POLLOUT) ? EPOLLOUT : 0u) |
                ((e & POLLPRI) ? EPOLLPRI : 0u) | ((e & POLLRDHUP) ? EPOLLRDHUP : 0u);
    ev.data.fd = fds[i].fd;
    if (::epoll_ctl(ep, EPOLL_CTL_ADD, fds[i].fd, &ev) != 0 && errno == EEXIST) {
      // The same fd twice: wait for the union of what each entry asks.
      std::uint32_t all = ev.events;
      for (std::size_t j = 0; j < i; ++j) {
        if (fds[j].fd != fds[i].fd) continue;
        const short f = fds[j].events;
        all |= ((f & POLLIN) ? EPOLLIN : 0u) | ((f & POLLOUT) ? EPOLLOUT : 0u) |
               ((f & POLLPRI) ? EPOLLPRI : 0u) | ((f & POLLRDHUP) ? EPOLLRDHUP : 0u);
      }
      ev.events = all;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, fds[i].fd, &ev);
    }
    // EPERM (a regular file) needs no wait: poll reports such files ready at once.
  }
  const IoOutcome o = perform_patched(ringlet::detail::poll_request(ep, POLLIN, "poll (patched)"), d);
  close_own(ep);
  return o;
}

int woke_errno(Woke w) noexcept {
  switch (w) {
    case Woke::Notified: return 0;
    case Woke::Deadline: return EAGAIN;
    case Woke::Scoped: return ETIMEDOUT;
    case Woke::Interrupted:
    case Woke::Killed: return EINTR;
    case Woke::Deadlock: return ENOMEM;
  }
  return EINTR;
}


ringlet::Deadline deadline_after_ns(std::int64_t ns) noexcept {
  if (ns < 0) return ringlet::Deadline::never();
  return ringlet::Deadline::after(std::chrono::nanoseconds(ns));
}

// --- start-up and exit -------------------------------------------------------------------

namespace {
// The report goes to a copy of stderr made at start-up: programs often close stderr on their
// way out (coreutils' close_stdout does) before our exit handler runs.
int g_stats_fd = -1;
std::atomic<bool> g_stats_printed{false};
}  // namespace

void print_stats_now() noexcept {
  if (!g_counting.load() || g_stats_fd < 0 || g_stats_printed.exchange(true)) return;
  try {
    // The calls, then the runtime's counters for every scheduler (its fibers, parks, I/O,
    // stacks): at exit from main the run is still going, so they are the run's totals.
    std::string r = stats_report() + ringlet::detail::format_stats(ringlet::stats(), "ringlet patch: ");
    ringlet::detail::sys::write(g_stats_fd, r.data(), r.size());
  } catch (...) {
  }
}

namespace {
void print_stats_at_exit() { print_stats_now(); }


__attribute__((constructor(101))) void init_patch() {
#if defined(__SANITIZE_THREAD__)
  // TSan is initialised by now (from the executable's preinit_array, or as a library that
  // this one needs): the hooks of RINGLET_TSAN_EARLY stop passing every call through.
  __atomic_store_n(&g_tsan_started, true, __ATOMIC_RELEASE);
#endif
  if (const char* spec = std::getenv("RINGLET_PATCH")) {
    unsigned groups = All;
    std::string error;
    if (!parse_groups(spec, groups, error)) {
      std::fprintf(stderr, "ringlet patch: RINGLET_PATCH='%s': %s; patching everything\n", spec,
                   error.c_str());
      groups = All;
    }
    g_groups.store(groups);
  }
  if (const char* v = std::getenv("RINGLET_PATCH_STATS"); v && *v && std::strcmp(v, "0") != 0) {
    g_counting.store(true);
    g_stats_fd = ringlet::detail::sys::fcntl(2, F_DUPFD_CLOEXEC, 900);
    std::atexit(&print_stats_at_exit);
  }
  table();
}
}  // namespace

}  // namespace detail

// --- public controls ---------------------------------------------------------------------

unsigned enabled() noexcept { return detail::g_groups.load(); }
void enable(unsigned groups) noexcept { detail::g_groups.fetch_or(groups & All); }
void disable(unsigned groups) noexcept { detail::g_groups.fetch_and(~groups); }

void set_counting(bool on) noexcept { detail::g_counting.store(on); }

void reset_stats() noexcept {
  for (auto& c : detail::g_counters) c.on_fiber = 0, c.waited = 0, c.passed = 0;
}

CallStats stats(const std::string& call) {
  for (unsigned i = 0; i < static_cast<unsigned>(detail::Call::count_); ++i) {
    if (call == detail::call_name(static_cast<detail::Call>(i))) {
      const auto& c = detail::g_counters[i];
      return {c.on_fiber.load(), c.waited.load(), c.passed.load()};
    }
  }
  return {};
}

std::string stats_report() {
  std::string out = "ringlet patch: calls           on a fiber       waited  passed to libc\n";
  std::uint64_t tf = 0, tw = 0, tp = 0;
  for (unsigned i = 0; i < static_cast<unsigned>(detail::Call::count_); ++i) {
    const auto& c = detail::g_counters[i];
    const std::uint64_t f = c.on_fiber.load(), w = c.waited.load(), p = c.passed.load();
    if (f == 0 && w == 0 && p == 0) continue;  // lock waits count as waited only
    char line[128];
    std::snprintf(line, sizeof line, "ringlet patch:   %-16s %12llu %12llu %15llu\n",
                  detail::call_name(static_cast<detail::Call>(i)), static_cast<unsigned long long>(f),
                  static_cast<unsigned long long>(w), static_cast<unsigned long long>(p));
    out += line;
    tf += f, tw += w, tp += p;
  }
  char line[128];
  std::snprintf(line, sizeof line, "ringlet patch:   %-16s %12llu %12llu %15llu\n", "total",
                static_cast<unsigned long long>(tf), static_cast<unsigned long long>(tw),
                static_cast<unsigned long long>(tp));
  out += line;
  return out;
}

}  // namespace ringlet::patch

// --- the signal hooks --------------------------------------------------------------------
using ringlet::patch::detail::wrapped_sigaction;

RINGLET_HOOK RINGLET_NO_TSAN int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  RINGLET_TSAN_EARLY(sigaction, sig, act, old);
  return ringlet::patch::detail::wrapped_sigaction(sig, act, old);
}

// glibc's signal() installs with SA_RESTART (BSD semantics) through its internal sigaction,
// which we cannot see: do it here.
RINGLET_HOOK sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act {}, old {};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  if (ringlet::patch::detail::wrapped_sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

RINGLET_HOOK int siginterrupt(int sig, int flag) {
  struct sigaction act {};
  if (ringlet::patch::detail::wrapped_sigaction(sig, nullptr, &act) != 0) return -1;
  if (flag) act.sa_flags &= ~SA_RESTART;
  else act.sa_flags |= SA_RESTART;
  return ringlet::patch::detail::wrapped_sigaction(sig, &act, nullptr);
}

// A program that leaves with _exit skips the exit handlers: print the report here.
RINGLET_HOOK [[noreturn]] void _exit(int code) {
  ringlet::patch::detail::print_stats_now();
  reinterpret_cast<void (*)(int)>(ringlet::patch::detail::resolve_next("_exit"))(code);
  __builtin_unreachable();
}
