// Waiting for signals on a fiber: sigwait, sigwaitinfo, sigtimedwait, sigsuspend, pause, and
// reads of a blocking signalfd. Natively each blocks its thread until a signal comes; here
// it parks the calling fiber thread, and the others of the OS thread (the carrier) run.
//
// A fiber thread's signal mask is bookkeeping (thread/signal_mask.cpp), and so is main's once
// a fiber thread exists; the carrier's real mask is arbitrated here:
//   - a signal is blocked on the carrier only if main and every fiber thread block it, so
//     that a signal sent to the process reaches the carrier while some thread accepts it
//     (thread/signal_route.cpp then finds which one runs the handler);
//   - a sigwait-family wait needs its set S pending, not delivered: S is blocked on the
//     carrier for the wait's duration, and the fiber parks on a signalfd for S (readable
//     while one of S is pending for the carrier or the process), then takes the signal with
//     a sigtimedwait that cannot block;
//   - sigsuspend(mask)/pause need a handler to run: the waiting thread's mask is `mask` for
//     its duration, so what it accepts is let through (and routed to it when no thread
//     running accepts it), and the fiber parks until a handler ran for it (its SignalCounts).
// The carrier's mask is then main's own mask, plus what the sigwait-family waits block,
// less what some fiber thread accepts (a blocked wait wins). main's own
// sigprocmask/pthread_sigmask meanwhile change main's mask here, and are shown it
// (carrier_sigmask). Every other OS thread ringlet makes blocks every signal
// (runtime/native_thread.cpp), so a process-directed signal is left pending or reaches the
// carrier, never a helper.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "internal/sys.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"
#include "thread/common.hpp"

namespace ringlet::patch::detail {

std::atomic<int> g_mask_waits{0};

namespace {

using ringlet::Deadline;

// One per carrier (scheduler of the run), touched on that carrier only: fibers never move,
// and a carrier's real mask can only be set on its own OS thread. Carrier 0 carries main:
// its base is main's own mask. Another carrier's base is the mask it had when its arbiter
// began (the runtime blocks every asynchronous signal there, so a signal reaches it only
// for what its own fiber threads accept or its waits take).
struct Arbiter {
  int active = 0;                 // waits in progress, +1 once fiber threads exist here
  Scheduler* sched = nullptr;     // the carrier's scheduler, while active
  sigset_t main_mask{};           // the base: main's own mask on carrier 0, while active
  bool threads = false;           // a fiber thread counts here: masks count from then on
  unsigned block[NSIG] = {};      // sigwait-family waits that need the signal pending
  unsigned accept[NSIG] = {};     // fiber threads whose mask lets the signal through
};
Arbiter g_arbs[ringlet::patch::kMaxCarriers];
std::atomic<bool> g_threads{false};                // a fiber thread was made (thread_masks_on)
std::atomic<std::uint64_t> g_main_bits{0};         // main's mask, for every carrier's handlers
std::atomic<unsigned> g_accepting_all[NSIG];       // fiber threads of every carrier accepting sig

std::atomic<unsigned> g_arbs_used{1};             // carriers whose arbiter may be in use

Arbiter& arb() noexcept {
  const unsigned k = ringlet::this_core();
  if (RINGLET_UNLIKELY(k >= g_arbs_used.load(std::memory_order_relaxed))) {
    unsigned u = g_arbs_used.load(std::memory_order_relaxed);
    while (u <= k && !g_arbs_used.compare_exchange_weak(u, k + 1, std::memory_order_relaxed)) {
    }
  }
  return g_arbs[k];
}

void main_mask_changed(const Arbiter& a) noexcept {
  if (&a == &g_arbs[0]) g_main_bits.store(static_cast<std::uint64_t>(a.main_mask.__val[0]), std::memory_order_relaxed);
}

int real_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  return RINGLET_REAL(pthread_sigmask)(how, set, old);
}

// glibc's own signals (SIGCANCEL, SIGSETXID): sigaddset refuses them (EINVAL), and
// pthread_sigmask leaves them alone.
bool internal_signal(int sig) noexcept { return sig >= 32 && sig < SIGRTMIN; }

// Put the arbitrated mask on this carrier. A signal it unblocks that is pending runs its
// handler before this returns. errno is kept (the callers' answers are in it).
void apply() noexcept {
  const int saved = errno;
  const Arbiter& a = arb();
  sigset_t eff = a.main_mask;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (internal_signal(sig)) continue;
    if (a.block[sig]) sigaddset(&eff, sig);
    else if (a.accept[sig]) sigdelset(&eff, sig);
  }
  real_sigmask(SIG_SETMASK, &eff, nullptr);
  errno = saved;
}

// The arbiter in force (the carrier's mask taken as bookkeeping) while there is a claim on it.
void claim_begin() noexcept {
  Arbiter& a = arb();
  if (a.active++ == 0) {
    a.sched = Scheduler::current();
    real_sigmask(SIG_BLOCK, nullptr, &a.main_mask);
    main_mask_changed(a);
  }
  g_mask_waits.fetch_add(1, std::memory_order_relaxed);
}

void claim_end() noexcept {
  Arbiter& a = arb();
  if (--a.active == 0) a.sched = nullptr;
  g_mask_waits.fetch_sub(1, std::memory_order_relaxed);
}

// A sigwait-family wait's claim on the carrier's mask: its set is kept pending.
class MaskClaim {
 public:
  explicit MaskClaim(const sigset_t* block) noexcept : block_(block) {
    claim_begin();
    count(+1);
    apply();
  }
  ~MaskClaim() {
    count(-1);
    apply();  // with no wait left: main's own mask again (less what fiber threads accept)
    claim_end();
  }
  MaskClaim(const MaskClaim&) = delete;
  MaskClaim& operator=(const MaskClaim&) = delete;

 private:
  void count(int by) noexcept {
    Arbiter& a = arb();
    for (int sig = 1; sig < NSIG; ++sig)
      if (!internal_signal(sig) && sigismember(block_, sig) == 1) a.block[sig] += static_cast<unsigned>(by);
  }
  const sigset_t* block_;
};

// Count r's mask into the fiber threads' (by = +1) or out of it (-1); true if a signal's
// count went from or to 0 (the carrier's mask may change).
// (Bit sig-1 of glibc's first word of a sigset_t is signal sig: one pass over the signals the
// mask lets through, at every pthread_create and thread end.)
bool count_thread_mask(const sigset_t& mask, int by) noexcept {
  static_assert(NSIG - 1 <= 64 && sizeof(mask.__val[0]) == 8);
  constexpr std::uint64_t kInternal = (std::uint64_t{1} << 31) | (std::uint64_t{1} << 32);  // 32, 33
  std::uint64_t accepts = ~static_cast<std::uint64_t>(mask.__val[0]) & ~kInternal;
  bool changed = false;
  Arbiter& a = arb();
  while (accepts) {
    const int sig = __builtin_ctzll(accepts) + 1;
    accepts &= accepts - 1;
    const unsigned before = a.accept[sig];
    a.accept[sig] = before + static_cast<unsigned>(by);
    g_accepting_all[sig].fetch_add(static_cast<unsigned>(by), std::memory_order_relaxed);
    changed |= before == 0 || a.accept[sig] == 0;
  }
  return changed;
}

// The caller's own mask: a fiber thread's bookkeeping, or main's.
void caller_mask(sigset_t* out) noexcept {
  if (ThreadRec* r = current_rec()) *out = r->sigmask;
  else if (arb().active > 0) *out = arb().main_mask;
  else real_sigmask(SIG_BLOCK, nullptr, out);
}

// glibc declares the sets nonnull; a null one must still get the kernel's answer (EFAULT)
// from the real call, so this check must survive the compiler's assumption.
bool is_null(const void* p) noexcept {
  asm("" : "+r"(p));
  return p == nullptr;
}

bool valid_timeout(const timespec* t) noexcept {
  return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1'000'000'000;
}

// sigtimedwait on a fiber: the signal number, or -errno. `eintr`: a handler run for the
// caller (so for a signal it does not block) ends the wait with EINTR (sigwaitinfo,
// sigtimedwait; sigwait waits on). The first try (nothing pending) was made by the caller.
RINGLET_SLOW int park_for_signal(Here h, const sigset_t& set, siginfo_t* info, Deadline d, bool eintr,
                                 Call c) noexcept {
  auto real = RINGLET_REAL(sigtimedwait);
  const timespec zero{0, 0};
  const unsigned handled = thread_signals().all;
  count_waited(c);
  MaskClaim claim{&set};
  const int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  int r;
  for (;;) {
    if ((r = take_own_pending(set, info)) > 0) break;  // sent to this thread (pthread_kill)
    r = real(&set, info, &zero);
    if (r > 0) break;
    if (errno != EAGAIN) {
      r = -errno;
      break;
    }
    if (eintr && thread_signals().all != handled) {
      r = -EINTR;
      break;
    }
    if (d.passed()) {
      r = -EAGAIN;
      break;
    }
    IoOutcome o;
    if (sfd >= 0) {
      const pollfd p{sfd, POLLIN, 0};
      o = wait_fds(h, &p, 1, d);
    } else {  // no descriptor left for the signalfd: look again every 5 ms
      Deadline step = deadline_after_ns(5'000'000);
      if (!d.is_never() && d.remaining() < step.remaining()) step = d;
      o.why = timed_sleep(h, step);
      if (o.why == Woke::Deadline) o.why = Woke::Notified;
    }
    if (o.why == Woke::Killed || o.why == Woke::Scoped || o.why == Woke::Deadlock) {
      r = -EINTR;  // the fiber is ended or timed out by C++: the C call returns EINTR
      break;
    }
    // Notified (ready), Deadline (looked at above), Interrupted (a handler ran, or a signal
    // was sent to a thread): look again.
  }
  if (sfd >= 0) close_own(sfd);
  return r;
}

// sigsuspend(mask) on a fiber: parks until a handler runs for a signal `mask` does not
// block, then -1/EINTR, as natively.
RINGLET_SLOW int park_for_handler(Here h, const sigset_t& mask, Call c) noexcept {
  count_on_fiber(c);
  count_waited(c);
  // A handler is run for this thread only for a signal its mask (here: `mask`) accepts.
  const unsigned handled = thread_signals().all;
  {
    WaitMask claim{&mask};
    // The fiber parks on a poll of a signalfd of no signal, which never becomes ready: a
    // handler ends the wait (Interrupted), and the poll in flight tells the runtime's
    // deadlock breaker (on in ringlet programs that link the patch) that this wait can be
    // ended from outside. (A signalfd of the accepted signals would turn ready as one
    // arrives, and the epoll engine's re-poll after its handler took it has been seen to
    // lose the interrupt.)
    sigset_t none;
    sigemptyset(&none);
    const int sfd = ::signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
    while (thread_signals().all == handled) {
      Woke w;
      if (sfd >= 0) {
        const pollfd p{sfd, POLLIN, 0};
        w = wait_fds(h, &p, 1, Deadline::never()).why;
        if (w == Woke::Notified) w = timed_sleep(h, deadline_after_ns(10'000'000));
        if (w == Woke::Deadline) continue;
      } else {
        w = timed_sleep(h, Deadline::never());
      }
      if (w != Woke::Interrupted) break;  // killed, or an enclosing Timeout: EINTR too
    }
    if (sfd >= 0) close_own(sfd);
  }
  errno = EINTR;
  return -1;
}

// fork keeps its caller only: the waits of the other fibers are gone in the child, and with
// them their claims on the masks and their masks, on every carrier. If the caller is main,
// the child's thread gets main's own mask back; if it is a fiber thread, it stays one, the
// only thread left (main's mask then blocks everything: main is gone).
void forked_child() noexcept {
  Scheduler* here = Scheduler::current();
  const unsigned used = g_arbs_used.load(std::memory_order_relaxed);
  const Arbiter* mine = nullptr;
  for (unsigned k = 0; k < used && !mine; ++k)
    if (g_arbs[k].active > 0 && g_arbs[k].sched == here) mine = &g_arbs[k];
  if (!mine && !g_threads.load(std::memory_order_relaxed)) return;
  const sigset_t m = mine ? mine->main_mask : sigset_t{};
  for (unsigned k = 0; k < used; ++k) g_arbs[k] = Arbiter{};
  for (auto& n : g_accepting_all) n.store(0, std::memory_order_relaxed);
  g_mask_waits.store(0, std::memory_order_relaxed);
  ThreadRec* me = current_rec();
  if (!me) {
    g_threads.store(false, std::memory_order_relaxed);
    if (mine) real_sigmask(SIG_SETMASK, &m, nullptr);
    return;
  }
  claim_begin();
  Arbiter& a = arb();
  a.threads = true;
  sigfillset(&a.main_mask);
  main_mask_changed(a);
  count_thread_mask(me->sigmask, +1);
  me->mask_counted = true;
  apply();
}

__attribute__((constructor)) void register_fork_handler() { ::pthread_atfork(nullptr, nullptr, &forked_child); }

// This carrier's arbiter counts fiber threads' masks from now on.
void threads_here() noexcept {
  Arbiter& a = arb();
  if (a.threads) return;
  a.threads = true;
  claim_begin();
}

}  // namespace

// --- fiber threads' masks (thread/common.hpp) ---------------------------------------------

void thread_masks_begin() noexcept {
  // The first thread: main's mask (the creator's carrier's) becomes bookkeeping for good.
  g_threads.store(true, std::memory_order_relaxed);
  threads_here();
}

void thread_mask_added(ThreadRec* r) noexcept {
  threads_here();
  r->mask_counted = true;
  if (count_thread_mask(r->sigmask, +1)) apply();
}

void thread_mask_removed(ThreadRec* r) noexcept {
  if (!r->mask_counted) return;
  r->mask_counted = false;
  if (count_thread_mask(r->sigmask, -1)) apply();
}

void set_thread_mask(ThreadRec* r, const sigset_t& mask) noexcept {
  if (!r->mask_counted) {  // not counted (cannot happen: counted from its start)
    r->sigmask = mask;
    return;
  }
  bool changed = count_thread_mask(r->sigmask, -1);
  r->sigmask = mask;
  changed |= count_thread_mask(mask, +1);
  if (changed) apply();
}

bool thread_masks_on() noexcept { return g_threads.load(std::memory_order_relaxed); }
void main_signals_gone() noexcept {
  Arbiter& a = arb();
  if (a.active == 0) return;  // no fiber thread: the process ends with main
  sigfillset(&a.main_mask);
  main_mask_changed(a);
  apply();
}

sigset_t main_mask_now() noexcept {
  if (g_arbs[0].active > 0) return g_arbs[0].main_mask;
  sigset_t m;
  real_sigmask(SIG_BLOCK, nullptr, &m);
  return m;
}
bool main_blocks(int sig) noexcept {
  return sig > 0 && sig <= 64 && ((g_main_bits.load(std::memory_order_relaxed) >> (sig - 1)) & 1u);
}
unsigned threads_accepting(int sig) noexcept {
  return sig > 0 && sig < NSIG ? g_accepting_all[sig].load(std::memory_order_relaxed) : 0;
}

// A fiber thread's wait with another mask: its mask for the wait. main's: main's mask, as
// natively.
WaitMask::WaitMask(const sigset_t* mask) noexcept {
  if (!mask) return;
  on_ = true;
  if (ThreadRec* r = current_rec()) {
    rec_ = r;
    saved_ = r->sigmask;
    set_thread_mask(r, *mask);
    deliver_pending(r);
    return;
  }
  claim_begin();
  Arbiter& a = arb();
  saved_ = a.main_mask;
  a.main_mask = *mask;
  main_mask_changed(a);
  apply();
  deliver_main_pending(*mask);
}

WaitMask::~WaitMask() {
  if (!on_) return;
  if (rec_) {
    set_thread_mask(static_cast<ThreadRec*>(rec_), saved_);
    return;
  }
  Arbiter& a = arb();
  a.main_mask = saved_;
  main_mask_changed(a);
  apply();
  claim_end();
}

// main's pthread_sigmask while fibers wait for signals (thread/signal_mask.cpp): main's own
// mask is changed and shown; the carrier gets it with the waits' claims.
int carrier_sigmask(int how, const sigset_t* set, sigset_t* old) noexcept {
  Arbiter& a = arb();
  if (a.active == 0 || Scheduler::current() != a.sched) return real_sigmask(how, set, old);
  const sigset_t prev = a.main_mask;
  if (set) {
    switch (how) {
      case SIG_BLOCK:
        sigorset(&a.main_mask, &a.main_mask, set);
        break;
      case SIG_UNBLOCK:
        for (int sig = 1; sig < NSIG; ++sig)
          if (!internal_signal(sig) && sigismember(set, sig) == 1) sigdelset(&a.main_mask, sig);
        break;
      case SIG_SETMASK:
        a.main_mask = *set;
        break;
      default:
        return EINVAL;
    }
  }
  if (old) *old = prev;
  if (set) {
    main_mask_changed(a);
    apply();
    deliver_main_pending(a.main_mask);
  }
  return 0;
}

// A read of a signalfd the program left blocking: wait until it is readable (one of its
// signals pending for the carrier or the process), then read. A handler without
// SA_RESTART ends the wait with EINTR, as it ends the kernel's read.
long signalfd_read(FdState* st, int fd, void* buf, std::size_t n) noexcept {
  Here h = on_fiber(Socket);
  const SignalCounts at = thread_signals();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (n < sizeof(signalfd_siginfo) || ringlet::detail::sys::poll(&p, 1, 0) != 0 || kernel_nonblocking(fd, st))
      return RINGLET_REAL(read)(fd, buf, n);  // ready, an error to tell, or non-blocking now
    const IoOutcome o = wait_fds(h, &p, 1, Deadline::never());
    count_waited(Call::read);
    if (o.why == Woke::Notified) continue;
    // SA_RESTART handlers (or none) ran: the kernel would have restarted the read.
    if (o.why == Woke::Interrupted && thread_signals().no_restart == at.no_restart) continue;
    errno = woke_errno(o.why);
    return -1;
  }
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;
using ringlet::Deadline;
using ringlet::patch::Select;

static int cancel_point_sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* tmo) noexcept {
  Here h = on_fiber(Select);
  auto real = RINGLET_REAL(sigtimedwait);
  if (!h || is_null(set) || (tmo && (!valid_timeout(tmo) || (tmo->tv_sec == 0 && tmo->tv_nsec == 0)))) {
    count_passed(Call::sigtimedwait);
    return real(set, info, tmo);
  }
  count_on_fiber(Call::sigtimedwait);
  if (const int own = take_own_pending(*set, info)) return own;
  const timespec zero{0, 0};
  const int saved = errno;
  int r = real(set, info, &zero);
  if (r > 0 || errno != EAGAIN) return r;
  errno = saved;
  const Deadline d = tmo ? deadline_after_ns(static_cast<std::int64_t>(tmo->tv_sec) * 1'000'000'000 + tmo->tv_nsec)
                         : Deadline::never();
  r = park_for_signal(h, *set, info, d, true, Call::sigtimedwait);
  if (r < 0) {
    errno = -r;
    return -1;
  }
  return r;
}

RINGLET_HOOK int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* tmo) {
  return RINGLET_CANCEL_POINT(cancel_point_sigtimedwait(set, info, tmo));
}

static int cancel_point_sigwaitinfo(const sigset_t* set, siginfo_t* info) noexcept {
  Here h = on_fiber(Select);
  if (!h || is_null(set)) {
    count_passed(Call::sigtimedwait);
    return RINGLET_REAL(sigwaitinfo)(set, info);
  }
  return sigtimedwait(set, info, nullptr);
}

RINGLET_HOOK int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  return RINGLET_CANCEL_POINT(cancel_point_sigwaitinfo(set, info));
}

// POSIX: the signal in *sig and 0, or an error number; never EINTR (glibc waits on).
static int cancel_point_sigwait(const sigset_t* set, int* sig) noexcept {
  Here h = on_fiber(Select);
  if (!h || is_null(set)) {
    count_passed(Call::sigwait);
    return RINGLET_REAL(sigwait)(set, sig);
  }
  count_on_fiber(Call::sigwait);
  if (const int own = take_own_pending(*set, nullptr)) {
    *sig = own;
    return 0;
  }
  const int saved = errno;
  const timespec zero{0, 0};
  siginfo_t si;
  int r = RINGLET_REAL(sigtimedwait)(set, &si, &zero);
  if (r <= 0) {
    if (errno != EAGAIN) {
      r = errno;
      errno = saved;
      return r;
    }
    r = park_for_signal(h, *set, &si, Deadline::never(), false, Call::sigwait);
  }
  errno = saved;
  if (r < 0) return -r;
  *sig = r;
  return 0;
}

RINGLET_HOOK int sigwait(const sigset_t* set, int* sig) {
  return RINGLET_CANCEL_POINT(cancel_point_sigwait(set, sig));
}

static int cancel_point_sigsuspend(const sigset_t* mask) noexcept {
  Here h = on_fiber(Select);
  if (!h || is_null(mask)) {
    count_passed(Call::sigsuspend);
    return RINGLET_REAL(sigsuspend)(mask);
  }
  return park_for_handler(h, *mask, Call::sigsuspend);
}

RINGLET_HOOK int sigsuspend(const sigset_t* mask) {
  return RINGLET_CANCEL_POINT(cancel_point_sigsuspend(mask));
}

static int cancel_point_pause(void) noexcept {
  Here h = on_fiber(Select);
  if (!h) {
    count_passed(Call::pause);
    return RINGLET_REAL(pause)();
  }
  sigset_t mask;
  caller_mask(&mask);
  return park_for_handler(h, mask, Call::pause);
}

RINGLET_HOOK int pause(void) {
  return RINGLET_CANCEL_POINT(cancel_point_pause());
}
