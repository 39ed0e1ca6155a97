// Each fiber thread's own CPU clock (and main's, under the launcher): CLOCK_THREAD_CPUTIME_ID,
// the clocks pthread_getcpuclockid hands out, and getrusage(RUSAGE_THREAD).
//
// The kernel's clock of the OS thread counts every fiber it carries. The runtime charges
// each fiber the time it runs (Scheduler::enable_cpu_accounting, turned on for a scheduler
// when its first fiber thread is made, and for main's as main starts): intervals between
// switches on a cheap clock, those of 50 us or more as the OS thread's CPU clock grew over
// them. So a fiber thread's clock counts its own time on the CPU (user and system), less the
// time its OS thread was preempted or blocked in a call the patch does not make cooperative
// during one of its long intervals; an interval under 50 us is counted whole (even if the
// thread was preempted or blocked in it). The scheduler's own time belongs to no thread.
//
// A fiber thread's clock id is the kernel's encoding of a thread CPU clock,
// ((~tid) << 3) | type | 4, made with its gettid() id: those are above PID_MAX_LIMIT, so no
// real thread's clock is ever taken for one, and once the thread has ended the id is the
// kernel's to refuse (EINVAL, as for a thread that ended natively). main keeps its real
// thread's id, so its clock is the OS thread's encoding; that one is answered with main's
// own time.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "common.hpp"
#include "identity.hpp"
#include "internal/fiber_state.hpp"
#include "internal/sys.hpp"

namespace ringlet::patch::detail {
namespace {

using ringlet::detail::st;

// The kernel's layout of a CPU clock id (linux/posix-timers.h).
constexpr clockid_t kPerThread = 4;  // CPUCLOCK_PERTHREAD_MASK
constexpr clockid_t kTypeMask = 3;   // CPUCLOCK_CLOCK_MASK
constexpr clockid_t kVirt = 1;       // CPUCLOCK_VIRT: user time only
constexpr clockid_t kSched = 2;      // CPUCLOCK_SCHED: what pthread_getcpuclockid gives

pid_t clock_pid(clockid_t c) noexcept { return static_cast<pid_t>(~(c >> 3)); }
clockid_t make_clock(pid_t tid, clockid_t type) noexcept {
  return static_cast<clockid_t>((~static_cast<std::uint32_t>(tid)) << 3) | type | kPerThread;
}

// main running as a fiber (the launcher): its fiber, and the kernel id of the OS thread that
// carries it (whose clock id stands for main's).
std::atomic<Fiber*> g_clock_main{nullptr};
std::atomic<pid_t> g_main_tid{0};

pid_t real_gettid() noexcept { return static_cast<pid_t>(RINGLET_REAL(syscall)(SYS_gettid)); }

void main_forked_child() noexcept {
  Fiber* m = g_clock_main.load(std::memory_order_relaxed);
  Scheduler* s = Scheduler::current();
  // fork keeps its caller only: main, on its OS thread's new id, or nobody.
  if (m && s && s->running() == m) g_main_tid.store(real_gettid(), std::memory_order_relaxed);
  else g_main_tid.store(0, std::memory_order_relaxed);
}

// The fiber whose run time answers CLOCK_THREAD_CPUTIME_ID for the caller: the running fiber
// thread (or main), if its scheduler accounts; else null (the OS thread's clock answers).
const Fiber* self_fiber() noexcept {
  Scheduler* s = Scheduler::current();
  if (!s || !s->cpu_accounting()) return nullptr;
  Fiber* f = s->running();
  if (!f) return nullptr;
  if (f == g_clock_main.load(std::memory_order_relaxed) || current_rec()) return f;
  return nullptr;
}

// The run time behind clock c, if it is a fiber thread's (or main's): true and *ns. False:
// not ours, the real clock answers (a process clock, a real thread's, an id nobody has).
bool fiber_clock_ns(clockid_t c, std::uint64_t* ns) noexcept {
  if (c == CLOCK_THREAD_CPUTIME_ID || (c < 0 && (c & kPerThread) && clock_pid(c) == 0)) {
    const Fiber* f = self_fiber();
    if (!f) return false;
    *ns = Scheduler::cpu_time_ns(f);
    return true;
  }
  if (c >= 0 || !(c & kPerThread) || (c & kTypeMask) == kTypeMask) return false;
  const pid_t pid = clock_pid(c);
  if (pid > kPidMaxLimit) return fiber_thread_cpu_ns(pid, ns);
  const pid_t main_tid = g_main_tid.load(std::memory_order_relaxed);
  if (main_tid && pid == main_tid) {
    *ns = Scheduler::cpu_time_ns(g_clock_main.load(std::memory_order_relaxed));
    return true;
  }
  return false;
}

std::uint64_t tv_ns(const timeval& tv) noexcept {
  return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(tv.tv_usec) * 1000u;
}
timeval ns_tv(std::uint64_t ns) noexcept {
  return {static_cast<time_t>(ns / 1'000'000'000u), static_cast<suseconds_t>(ns % 1'000'000'000u / 1000u)};
}

// The user part of `total`: the OS thread's own share of user time in its CPU time (the
// runtime measures no split per fiber).
std::uint64_t user_part(std::uint64_t total, const rusage& os) noexcept {
  const std::uint64_t u = tv_ns(os.ru_utime), s = tv_ns(os.ru_stime);
  if (u + s == 0) return total;
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(total) * u / (u + s));
}

// glibc's clock_gettime, once looked up: the hook's pass-through is a test of the clock id,
// a load and a jump (RINGLET_REAL's inline lookup made it save registers first).
std::atomic<int (*)(clockid_t, timespec*)> g_real_clock_gettime{nullptr};

RINGLET_SLOW int cpu_clock_gettime(clockid_t c, timespec* ts) noexcept {
  auto* real = RINGLET_REAL(clock_gettime);
  g_real_clock_gettime.store(real, std::memory_order_relaxed);
  std::uint64_t ns = 0;
  if (!fiber_clock_ns(c, &ns)) return real(c, ts);
  if ((c & kTypeMask) == kVirt && c < 0) {
    rusage os{};
    RINGLET_REAL(getrusage)(RUSAGE_THREAD, &os);
    ns = user_part(ns, os);
  }
  if (!ts) {  // the kernel's answer to a null pointer
    errno = EFAULT;
    return -1;
  }
  ts->tv_sec = static_cast<time_t>(ns / 1'000'000'000u);
  ts->tv_nsec = static_cast<long>(ns % 1'000'000'000u);
  return 0;
}

RINGLET_SLOW int cpu_clock_getres(clockid_t c, timespec* res) noexcept {
  std::uint64_t ns = 0;
  if (!fiber_clock_ns(c, &ns)) return RINGLET_REAL(clock_getres)(c, res);
  if (res) *res = {0, 1};  // the kernel's for CPU clocks (it measures in ns)
  return 0;
}

RINGLET_SLOW int thread_getrusage(rusage* ru) noexcept {
  const Fiber* f = self_fiber();
  const int r = RINGLET_REAL(getrusage)(RUSAGE_THREAD, ru);
  if (r != 0 || !f) return r;
  const std::uint64_t total = Scheduler::cpu_time_ns(f);
  const std::uint64_t user = user_part(total, *ru);
  ru->ru_utime = ns_tv(user);
  ru->ru_stime = ns_tv(total - user);
  return 0;
}

}  // namespace

void start_main_cpu_clock() noexcept {
  Scheduler* s = Scheduler::current();
  Fiber* f = s ? s->running() : nullptr;
  if (!f || !thread_group_on()) return;
  // What the OS thread ran before (the loader, constructors) is main's, as natively.
  s->enable_cpu_accounting();
  f->add_ref();  // main's record stays, for its clock, even after a pthread_exit in main
  g_main_tid.store(real_gettid(), std::memory_order_relaxed);
  g_clock_main.store(f, std::memory_order_release);
  pthread_atfork(nullptr, nullptr, &main_forked_child);
}

bool other_fiber_cpu_clock_ns(clockid_t c, std::uint64_t* ns) noexcept {
  if (c >= 0 || !(c & kPerThread)) return false;
  const pid_t pid = clock_pid(c);
  if (pid == 0 || pid == patched_gettid()) return false;
  return fiber_clock_ns(c, ns);
}

int fiber_thread_cpuclockid(ThreadRec* r, clockid_t* clock) noexcept {
  // Ended (glibc: the kernel cleared the thread's tid): ESRCH. A fiber thread kept by
  // fork runs on the child's only OS thread, under that thread's kernel id.
  if (r->done) return ESRCH;
  if (r->tid) {
    *clock = make_clock(r->tid, kSched);
    return 0;
  }
  if (r->carrier_tid) {
    *clock = make_clock(r->carrier_tid, kSched);
    return 0;
  }
  return ESRCH;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

// Called for every clock (CLOCK_MONOTONIC and CLOCK_REALTIME often): those pass straight on.
// CPU clocks are CLOCK_PROCESS_CPUTIME_ID (2), CLOCK_THREAD_CPUTIME_ID (3) and the negative
// ids of clock_getcpuclockid/pthread_getcpuclockid.
RINGLET_HOOK int clock_gettime(clockid_t c, struct timespec* ts) {
  if (RINGLET_LIKELY(c >= 0 && c != CLOCK_THREAD_CPUTIME_ID)) {
    if (auto* real = g_real_clock_gettime.load(std::memory_order_relaxed); RINGLET_LIKELY(real != nullptr))
      return real(c, ts);
  }
  return cpu_clock_gettime(c, ts);  // a CPU clock, or the first call: glibc's looked up
}

RINGLET_HOOK int clock_getres(clockid_t c, struct timespec* res) {
  if (RINGLET_LIKELY(c >= 0 && c != CLOCK_THREAD_CPUTIME_ID)) return RINGLET_REAL(clock_getres)(c, res);
  return cpu_clock_getres(c, res);
}

// Setting a CPU clock: the kernel refuses with EPERM; a fiber thread's id is unknown to it
// (it would say EINVAL).
RINGLET_HOOK int clock_settime(clockid_t c, const struct timespec* ts) {
  std::uint64_t ns = 0;
  if (RINGLET_UNLIKELY(c < 0) && fiber_clock_ns(c, &ns)) {
    errno = EPERM;
    return -1;
  }
  return RINGLET_REAL(clock_settime)(c, ts);
}

// A timer on a fiber thread's CPU clock is not offered: the kernel's CPU timers follow OS
// threads. Said once; then the call is the kernel's: on CLOCK_THREAD_CPUTIME_ID or main's
// clock id a timer of the OS thread's CPU time (every fiber thread it carries), on a fiber
// thread's clock id EINVAL (the kernel knows no such thread).
RINGLET_HOOK int timer_create(clockid_t c, struct sigevent* ev, timer_t* out) {
  std::uint64_t ns = 0;
  // (main's timers are exact while it is the only thread.)
  if (RINGLET_UNLIKELY(c < 0 || c == CLOCK_THREAD_CPUTIME_ID) && fiber_threads_made() && fiber_clock_ns(c, &ns)) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      const char msg[] =
          "ringlet patch: timer_create on a thread's CPU clock: the kernel's CPU timers count OS "
          "threads, not fiber threads: CLOCK_THREAD_CPUTIME_ID and main's clock count the OS "
          "thread that carries them (all its fiber threads); a fiber thread's clock id is "
          "refused (EINVAL)\n";
      ringlet::detail::sys::write(2, msg, sizeof msg - 1);
    }
  }
  return RINGLET_REAL(timer_create)(c, ev, out);
}

RINGLET_HOOK int getrusage(int who, struct rusage* ru) {
  if (RINGLET_LIKELY(who != RUSAGE_THREAD)) return RINGLET_REAL(getrusage)(who, ru);
  return thread_getrusage(ru);
}
