// The blocking monitor: one thread for the process, started by the first scheduler that
// asks for it. Every half threshold it samples each registered scheduler's switch count; a
// scheduler that is in its loop, not sleeping in its reactor, and has not switched for the
// threshold is held by one fiber (a loop that never blocks, a libc call that blocks its
// thread). Outside its loop (a core waiting for the run's other threads to start, or
// joining them at the end) a scheduler holds nothing (Scheduler::idle).
// The monitor then signals that thread; the handler, running on the fiber that holds it,
// copies the fiber's name and a backtrace, which the monitor formats and prints. When the
// fiber finally switches, the monitor says how long it held on in all. A thread blocked in a
// call whose outcome a signal handler would change (nanosleep's EINTR, a write's partial
// count: signal(7)) is not signalled: the report then names the call and the return
// addresses a scan of its stack finds (internal/blocked_call.hpp), and the program's call
// goes on. Reports go to stderr, or to the file RINGLET_MONITOR_FILE names (appended); a
// stack already reported is named by its report's number and counted, not printed again. A
// report says whether the thread was computing or blocked in the kernel (its CPU time over
// the stretch: a tenth of it or more is computing).
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "internal/blocked_call.hpp"
#include "internal/cpu_clock.hpp"
#include "internal/native_thread.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace ringlet::detail {

namespace {

// What the signal handler leaves for the monitor thread.
struct Capture {
  std::atomic<int> state{0};  // 0 idle, 1 requested, 2 filled
  char name[64] = {};
  std::uint64_t id = 0;
  bool loop = false;  // the scheduler loop itself, not a fiber
  void* frames[32] = {};
  int depth = 0;
  int first = 0;  // frames[first] is where the fiber was interrupted
};
Capture g_capture;

std::atomic<bool> g_exiting{false};  // exit() has run the handlers registered after the monitor's

int monitor_signal() { return SIGRTMAX - 1; }

// Runs on the interrupted stack itself (no SA_ONSTACK): an alternate signal stack may be a
// program's small one (Python's faulthandler installs 16 KiB), too small for the unwinder.
// A fiber with little stack left gets only the interrupted instruction.
void on_monitor_signal(int, siginfo_t*, void* ucv) {
  const int saved = errno;
  if (g_capture.state.load(std::memory_order_acquire) == 1) {
    Scheduler* s = Scheduler::current();
    Fiber* f = s ? s->running() : nullptr;
    void* pc = reinterpret_cast<void*>(static_cast<ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RIP]);
    g_capture.loop = f == nullptr;
    g_capture.id = f ? f->id : 0;
    g_capture.name[0] = '\0';
    if (f && !f->name.empty()) {
      const std::size_t n = std::min(f->name.size(), sizeof g_capture.name - 1);
      std::memcpy(g_capture.name, f->name.data(), n);
      g_capture.name[n] = '\0';
    }
    const char* sp = static_cast<const char*>(__builtin_frame_address(0));
    const char* lo = f ? st(f).stack.lo : nullptr;
    const bool roomy = !lo || (sp > lo && sp - lo > (48 << 10));
    g_capture.first = 0;
    g_capture.depth = 0;
    if (roomy) {
      g_capture.depth = backtrace(g_capture.frames, 32);
      // Start at the interrupted instruction (past the handler and the signal trampoline).
      g_capture.first = g_capture.depth;
      for (int i = 0; i < g_capture.depth; ++i)
        if (g_capture.frames[i] == pc) g_capture.first = i;
      if (g_capture.first == g_capture.depth) g_capture.first = std::min(2, g_capture.depth);
    }
    if (g_capture.depth == 0) {
      g_capture.frames[0] = pc;
      g_capture.depth = 1;
    }
    g_capture.state.store(2, std::memory_order_release);
  }
  errno = saved;
}

struct Watched {
  Scheduler* s;
  pthread_t thread;
  pid_t tid;
  long threshold_ms;
  std::uint64_t seen = 0;        // switch count at the last sample
  std::int64_t since_ns = 0;     // when it was first seen unchanged and busy
  bool reported = false;         // for this stretch
  std::string who;               // named in the report, for the follow-up
  clockid_t cpu_clock = 0;       // the thread's CPU clock
  std::int64_t cpu_since_ns = 0;  // its reading at since_ns
  int quiet = 0;                  // monitor_before_exec: not signalled (nested: a count)
};

// The OS thread's CPU time (the patch gives each fiber a clock of its own; this is not it).
std::int64_t cpu_ns(clockid_t clk) { return static_cast<std::int64_t>(os_thread_cpu_ns(clk)); }

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Where reports go: RINGLET_MONITOR_FILE (appended, made if missing), else stderr. A file
// that cannot be opened is said once on stderr, which then gets the reports.
int report_fd() {
  static const int fd = [] {
    const char* path = std::getenv("RINGLET_MONITOR_FILE");
    if (!path || !*path) return 2;
    const int f = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (f >= 0) return f;
    const std::string msg = std::string("ringlet: RINGLET_MONITOR_FILE='") + path + "' cannot be opened (" +
                            std::strerror(errno) + "); the monitor reports on stderr\n";
    (void)sys::write(2, msg.data(), msg.size());
    return 2;
  }();
  return fd;
}

void say(const std::string& text) {
  // The runtime's own write (an interposed write must not see it); stderr may be a
  // pipe nobody reads, so a short write is simply dropped.
  (void)sys::write(report_fd(), text.data(), text.size());
}

// The stacks reported so far: a repeat is counted and named by its first report's number.
struct Seen {
  std::uint64_t hash;
  unsigned report;  // its number, from 1
  unsigned times;
};

// A stack's identity: the functions on it (where each frame's function starts, so the exact
// instruction a loop was interrupted at does not make a new place).
std::uint64_t stack_hash(void* const* frames, int first, int depth) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (int i = first; i < depth; ++i) {
    Dl_info info{};
    const void* at = dladdr(frames[i], &info) && info.dli_saddr ? info.dli_saddr : frames[i];
    h ^= reinterpret_cast<std::uintptr_t>(at);
    h *= 1099511628211ull;
  }
  return h;
}

std::string format_frames(void* const* frames, int first, int depth) {
  std::string out;
  for (int i = first, n = 0; i < depth && n < 16; ++i, ++n) {
    Dl_info info{};
    char line[512];
    const auto pc = reinterpret_cast<std::uintptr_t>(frames[i]);
    if (dladdr(frames[i], &info) && info.dli_fname) {
      const auto base = reinterpret_cast<std::uintptr_t>(info.dli_fbase);
      if (info.dli_sname)
        std::snprintf(line, sizeof line, "    #%d %s+0x%lx (%s+0x%lx)\n", n, info.dli_sname,
                      static_cast<unsigned long>(pc - reinterpret_cast<std::uintptr_t>(info.dli_saddr)),
                      info.dli_fname, static_cast<unsigned long>(pc - base));
      else
        std::snprintf(line, sizeof line, "    #%d %s+0x%lx\n", n, info.dli_fname,
                      static_cast<unsigned long>(pc - base));
    } else {
      std::snprintf(line, sizeof line, "    #%d 0x%lx\n", n, static_cast<unsigned long>(pc));
    }
    out += line;
  }
  return out;
}

class Monitor {
 public:
  void add(Scheduler* s, long ms) {
    std::unique_lock lk(mu_);
    // Watched from now: a scheduler added before its loop has run (a core of a run waiting
    // for the others to start) has held nothing since the epoch.
    const clockid_t clk = os_thread_cpu_clock();
    const auto tid = static_cast<pid_t>(::syscall(SYS_gettid));
    watched_.push_back(Watched{s, pthread_self(), tid, ms, s->switch_count(), now_ns(), false, {}, clk, cpu_ns(clk)});
    if (!started_) {
      started_ = true;
      // Once the process exits, nothing is watched: by the time the exit handlers registered
      // before this one run (ThreadSanitizer's own sleeps a second at exit), a scheduler held
      // is no fiber starving others.
      std::atexit([] { g_exiting.store(true, std::memory_order_relaxed); });
      install_handler();
      void* warm[2];
      backtrace(warm, 2);  // loads the unwinder now, not inside the handler
      quiet_threads.fetch_add(1, std::memory_order_relaxed);
      NativeThread([this] { loop(); }).detach();  // lives as long as the process
    }
    cv_.notify_all();
  }
  // The thread of s is about to exec (on = true), or its exec failed (false). Once this
  // returns for true, the monitor sends s's thread nothing more, and no signal of its own
  // is pending there: one left pending would outlive the exec (the kernel keeps a thread's
  // pending signals across execve) and meet the new image's default action, which ends the
  // process. Only its own thread calls this for s.
  void quiet(Scheduler* s, bool on) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return busy_ != s; });  // a sample in progress has had its answer
    for (Watched& w : watched_) {
      if (w.s != s) continue;
      if (on) {
        ++w.quiet;
      } else if (w.quiet > 0 && --w.quiet == 0) {
        w.seen = s->switch_count();  // a stretch from now, as after a switch
        w.since_ns = now_ns();
        w.cpu_since_ns = cpu_ns(w.cpu_clock);
        w.reported = false;
      }
    }
    lk.unlock();
    if (on) take_pending_signal();
  }

  // In a forked child the monitor's thread is gone, and it may have held the lock, or been
  // in the middle of a sample (busy_), at the fork: the child starts with a fresh lock and
  // nothing watched (the lists are left to leak, possibly caught mid-change); a scheduler
  // the child registers starts a thread of its own.
  void forget_in_child() noexcept {
    new (&mu_) std::mutex;
    new (&cv_) std::condition_variable;
    new (&watched_) std::list<Watched>;
    new (&seen_) std::vector<Seen>;
    busy_ = nullptr;
    if (started_) quiet_threads.fetch_sub(1, std::memory_order_relaxed);  // its thread is gone
    started_ = false;
    g_capture.state.store(0, std::memory_order_relaxed);
  }

  void remove(Scheduler* s) {
    std::unique_lock lk(mu_);
    // The sample in progress may be waiting for this thread's handler: let it finish.
    cv_.wait(lk, [&] { return busy_ != s; });
    watched_.remove_if([&](const Watched& w) { return w.s == s; });
  }

 private:
  // The calling thread's pending monitor signal, if any, taken without running the handler:
  // one sent before quiet() while the thread had it blocked (a program that blocks every
  // signal around its exec). An unblocked one was delivered at the thread's last return from
  // the kernel already. Raw system calls: the patch interposes the mask and wait calls.
  static void take_pending_signal() noexcept {
    sigset_t pending;
    sigemptyset(&pending);
    if (::syscall(SYS_rt_sigpending, &pending, _NSIG / 8) != 0 || sigismember(&pending, monitor_signal()) != 1)
      return;
    sigset_t only, old;
    sigemptyset(&only);
    sigaddset(&only, monitor_signal());
    ::syscall(SYS_rt_sigprocmask, SIG_BLOCK, &only, &old, _NSIG / 8);
    const timespec zero{0, 0};
    (void)::syscall(SYS_rt_sigtimedwait, &only, nullptr, &zero, _NSIG / 8);
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, _NSIG / 8);
  }

  static void install_handler() {
    struct sigaction sa {};
    sa.sa_sigaction = &on_monitor_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    __sigaction(monitor_signal(), &sa, nullptr);
  }

  void loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      long period = 1000;
      for (const Watched& w : watched_) period = std::min(period, std::max(1L, w.threshold_ms / 2));
      cv_.wait_for(lk, std::chrono::milliseconds(period));
      const std::int64_t now = now_ns();
      for (Watched& w : watched_) sample(w, now, lk);
    }
  }

  void sample(Watched& w, std::int64_t now, std::unique_lock<std::mutex>& lk) {
    if (g_exiting.load(std::memory_order_relaxed) || w.quiet) return;
    const std::uint64_t count = w.s->switch_count();
    const bool idle = w.s->idle();
    if (count != w.seen || idle) {
      if (w.reported) {
        char line[256];
        std::snprintf(line, sizeof line,
                      "ringlet: %s let its scheduler go after %lld ms\n", w.who.c_str(),
                      static_cast<long long>((now - w.since_ns) / 1'000'000));
        say(line);
      }
      w.seen = count;
      w.since_ns = now;
      w.cpu_since_ns = cpu_ns(w.cpu_clock);
      w.reported = false;
      return;
    }
    const std::int64_t held_ms = (now - w.since_ns) / 1'000'000;
    if (w.reported || held_ms < w.threshold_ms) return;
    w.reported = true;
    // A call whose outcome the handler would change is not interrupted: its place is read
    // from /proc and the thread's stack instead.
    const BlockedCall call = blocked_call(w.tid);
    if (call.interrupt_changes_it) {
      if (w.s->switch_count() != count) {  // it went on meanwhile: nothing to report
        w.reported = false;
        return;
      }
      report_unsignalled(w, call, held_ms);
      return;
    }
    busy_ = w.s;
    g_capture.state.store(1, std::memory_order_release);
    // Only while our handler is the one installed: a program that took the signal for
    // itself must not receive it from us (the report then has no backtrace).
    struct sigaction cur {};
    const bool ours = __sigaction(monitor_signal(), nullptr, &cur) == 0 &&
                      (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == &on_monitor_signal;
    const bool sent = ours && pthread_kill(w.thread, monitor_signal()) == 0;
    lk.unlock();
    bool got = false;
    for (int i = 0; sent && i < 200 && !got; ++i) {  // up to ~100 ms for the handler
      got = g_capture.state.load(std::memory_order_acquire) == 2;
      if (!got) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    g_capture.state.store(0, std::memory_order_release);
    lk.lock();
    busy_ = nullptr;
    cv_.notify_all();
    // The fiber may have switched meanwhile: then the report is stale, skip it.
    if (w.s->switch_count() != count) {
      w.reported = false;
      return;
    }
    std::string text;
    if (got && g_capture.loop) {
      w.who = "the scheduler loop";
    } else if (got) {
      w.who = "fiber '" + (g_capture.name[0] ? std::string(g_capture.name)
                                              : "fiber-" + std::to_string(g_capture.id)) +
              "' (#" + std::to_string(g_capture.id) + ", core " + std::to_string(w.s->core()) + ")";
    } else {
      w.who = "a fiber";
    }
    text = held_text(w, held_ms);
    if (got) {
      text = with_place(text, " It is running at:\n", g_capture.frames, g_capture.first, g_capture.depth);
    } else {
      text += " (no backtrace: the thread did not answer the monitor's signal, or the program uses that signal)\n";
    }
    say(text);
  }

  // "has held its scheduler ...": computing, or blocked in the kernel (a call that should
  // have parked), by the share of the time the thread was on the CPU. A loaded machine takes
  // a computing thread off the CPU for some of it; a blocked one uses next to none.
  static std::string held_text(const Watched& w, std::int64_t held_ms) {
    const std::int64_t cpu_ms = (cpu_ns(w.cpu_clock) - w.cpu_since_ns) / 1'000'000;
    return "ringlet: " + w.who + " has held its scheduler for " + std::to_string(held_ms) +
           " ms without switching (threshold " + std::to_string(w.threshold_ms) + " ms), " +
           (cpu_ms * 10 >= held_ms ? "computing" : "blocked") + " (" + std::to_string(cpu_ms) +
           " ms on the CPU); every other fiber of the thread waits meanwhile.";
  }

  // A report's place: the frames, the first time this stack is seen; else the number of the
  // report that showed it.
  std::string with_place(const std::string& text, const char* intro, void* const* frames, int first, int depth) {
    const std::uint64_t h = stack_hash(frames, first, depth);
    auto it = std::find_if(seen_.begin(), seen_.end(), [&](const Seen& x) { return x.hash == h; });
    if (it != seen_.end()) {
      ++it->times;
      return text + " Same place as report " + std::to_string(it->report) + " (" + std::to_string(it->times) +
             " times now).\n";
    }
    seen_.push_back(Seen{h, ++reports_, 1});
    return "ringlet: report " + std::to_string(reports_) + ": " + text.substr(9) + intro +
           format_frames(frames, first, depth);
  }

  // A thread blocked in a call whose outcome the monitor's signal would change (the program
  // would see EINTR, a sleep cut short, a short write): not signalled. Which fiber holds the
  // thread only its handler could say safely; the call and the place come from /proc and the
  // stack.
  void report_unsignalled(Watched& w, const BlockedCall& call, std::int64_t held_ms) {
    w.who = "the fiber on core " + std::to_string(w.s->core());
    void* frames[17];
    frames[0] = call.pc;
    const int depth = 1 + scan_return_addresses(call.sp, frames + 1, 16);
    const std::string intro = std::string(" It is blocked in ") + call.name +
                              " (not interrupted for a backtrace: a signal would change its outcome), at "
                              "the call and the return addresses on its stack:\n";
    say(with_place(held_text(w, held_ms), intro.c_str(), frames, 0, depth));
  }

  std::mutex mu_;
  std::condition_variable cv_;
  // A list: a sample lets the lock go while it waits for a handler, and a scheduler added or
  // removed meanwhile must not move the entry it holds.
  std::list<Watched> watched_;
  Scheduler* busy_ = nullptr;
  bool started_ = false;
  std::vector<Seen> seen_;
  unsigned reports_ = 0;
};

Monitor& monitor() {
  static Monitor* m = [] {
    auto* made = new Monitor;  // never destroyed: its thread outlives main
    pthread_atfork(nullptr, nullptr, [] { monitor().forget_in_child(); });
    return made;
  }();
  return *m;
}

}  // namespace

long monitor_threshold(long from_options) {
  if (from_options >= 0) return from_options;
  const char* v = std::getenv("RINGLET_MAX_BLOCKING_MS");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long ms = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || ms < 0)
    throw std::invalid_argument(std::string("ringlet: RINGLET_MAX_BLOCKING_MS='") + v +
                                "' is not a number of milliseconds (0 turns the monitor off)");
  return ms;
}

void monitor_register(Scheduler* s, long threshold_ms) { monitor().add(s, threshold_ms); }
void monitor_unregister(Scheduler* s) noexcept { monitor().remove(s); }

void monitor_before_exec() noexcept {
  if (Scheduler* s = Scheduler::current(); s && s->monitored()) monitor().quiet(s, true);
}
void monitor_after_failed_exec() noexcept {
  if (Scheduler* s = Scheduler::current(); s && s->monitored()) monitor().quiet(s, false);
}

}  // namespace ringlet::detail
