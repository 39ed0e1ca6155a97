// The fiber dump on a signal (RunOptions::dump_signal; SIGQUIT unless told otherwise), as the
// JVM's kill -3: the program keeps running. The handler only asks, by writing to an eventfd
// (async-signal-safe); a thread of the runtime's own reads it and writes the dump to stderr
// or appends it to the file RINGLET_DUMP_FILE names. The thread starts with the run that
// installs the handler if the process has threads already, else at the first signal, from
// the loop the signal woke (a single-threaded process stays one: see dump_thread_wanted).
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "internal/dump.hpp"
#include "internal/native_thread.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

// The C library's own sigaction: a library preloaded into the process (the patch) may
// interpose sigaction, and this handler is the runtime's, not the program's.
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);

namespace ringlet::detail {

namespace {

std::mutex g_mu;
int g_signal = 0;      // the signal our handler is installed for (0: none)
int g_users = 0;       // runs that use it
int g_efd = -1;        // the handler's eventfd (written from the handler: a plain int)
bool g_thread = false;  // the dump thread runs (g_mu)
std::atomic<bool> g_thread_running{false};  // the same, for the handler

void on_dump_signal(int) {
  const int saved = errno;
  const std::uint64_t one = 1;
  (void)sys::write(g_efd, &one, sizeof one);  // kept until the thread reads it
  if (!g_thread_running.load(std::memory_order_relaxed)) {
    // Said once: the dump waits for a loop, which a fiber that never switches may hold.
    static constexpr char kNote[] =
        "ringlet: fiber dump asked for; it is written when this thread's scheduler next runs its loop "
        "(a fiber that never switches holds it off: gdb's 'info fibers' sees the fibers meanwhile)\n";
    if (!dump_thread_wanted.exchange(true, std::memory_order_relaxed)) (void)sys::write(2, kNote, sizeof kNote - 1);
    if (Scheduler* s = Scheduler::current()) s->notify_from_signal();
  }
  errno = saved;
}

void say_once_on_stderr(const std::string& text) {
  static std::once_flag once;
  std::call_once(once, [&] { (void)write_all(2, text); });
}

void dump_now() {
  std::string text;
  try {
    text = build_dump(nullptr);
  } catch (const std::exception& e) {
    text = std::string("ringlet: the fiber dump failed: ") + e.what() + "\n";
  }
  const char* path = std::getenv("RINGLET_DUMP_FILE");
  if (path && *path) {
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const bool ok = write_all(fd, text);
      sys::close(fd);
      if (ok) return;
    }
    say_once_on_stderr(std::string("ringlet: RINGLET_DUMP_FILE='") + path + "' cannot be written (" +
                       strerror(errno) + "); the fiber dump goes to stderr\n");
  }
  (void)write_all(2, text);
}

// The dump thread: lives as long as the process, blocked in read.
void dump_loop(int efd) {
  for (;;) {
    std::uint64_t n = 0;
    const ssize_t r = sys::read(efd, &n, sizeof n);
    if (r < 0 && errno == EINTR) continue;
    if (r != sizeof n) return;
    dump_now();
  }
}

bool ours(int sig) {
  struct sigaction cur {};
  return __sigaction(sig, nullptr, &cur) == 0 && is_dump_signal_handler(cur);
}

// In a forked child the dump thread is gone and the eventfd is the parent's: the handler
// does nothing there (a child's run does not install it again while it is in place).
void forget_in_child() noexcept {
  g_efd = -1;
  g_thread = false;
  g_thread_running.store(false, std::memory_order_relaxed);
  dump_thread_wanted.store(false, std::memory_order_relaxed);
}

// g_mu held.
void start_thread_locked() {
  if (g_thread || g_efd < 0) return;
  const int efd = g_efd;
  NativeThread([efd] { dump_loop(efd); }).detach();
  quiet_threads.fetch_add(1, std::memory_order_relaxed);
  g_thread = true;
  g_thread_running.store(true, std::memory_order_relaxed);
}

int parse_signal(const char* v) {
  std::string s = v;
  if (s == "off" || s == "0") return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end != v && *end == '\0') return n > 0 && n < NSIG ? static_cast<int>(n) : -1;
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = sigabbrev_np(sig);
    if (abbrev && s == abbrev) return sig;
  }
  return -1;
}

}  // namespace

std::atomic<bool> dump_thread_wanted{false};

void start_dump_thread() noexcept {
  dump_thread_wanted.store(false, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lk(g_mu);
  try {
    start_thread_locked();
  } catch (...) {
    say_once_on_stderr("ringlet: the fiber dump's thread cannot start; no dump on the signal\n");
  }
}

bool is_dump_signal_handler(const struct sigaction& sa) noexcept {
  return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == &on_dump_signal;
}

int dump_signal_setting(int from_options) {
  if (from_options >= 0) {
    if (from_options >= NSIG)
      throw std::invalid_argument("ringlet::run: RunOptions::dump_signal = " + std::to_string(from_options) +
                                  " is not a signal (0 turns the dump signal off)");
    return from_options;
  }
  const char* v = std::getenv("RINGLET_DUMP_SIGNAL");
  if (!v || !*v) return SIGQUIT;
  const int sig = parse_signal(v);
  if (sig < 0)
    throw std::invalid_argument(std::string("ringlet: RINGLET_DUMP_SIGNAL='") + v +
                                "' names no signal (QUIT, SIGUSR2, a number; 0 or off: none)");
  return sig;
}

void dump_signal_acquire(int sig) {
  if (sig <= 0) return;
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_users > 0) {
    if (sig == g_signal) ++g_users;  // one dump signal at a time: another run's differs, it goes without
    return;
  }
  struct sigaction cur {};
  if (__sigaction(sig, nullptr, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL) return;
  static std::once_flag atfork;
  std::call_once(atfork, [] { pthread_atfork(nullptr, nullptr, &forget_in_child); });
  if (g_efd < 0) {
    g_efd = ::eventfd(0, EFD_CLOEXEC);
    if (g_efd < 0) return;  // no dump signal in a process out of descriptors
  }
  // A process with other threads already pays for them: the thread starts now, and a dump
  // can report a core held by a busy fiber. A single-threaded one starts it at the first
  // signal (dump_thread_wanted).
  if (!__libc_single_threaded) start_thread_locked();
  struct sigaction sa {};
  sa.sa_handler = &on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (__sigaction(sig, &sa, nullptr) != 0) return;
  g_signal = sig;
  g_users = 1;
}

void dump_signal_release(int sig) noexcept {
  if (sig <= 0) return;
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_users == 0 || sig != g_signal || --g_users > 0) return;
  if (ours(sig)) {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    __sigaction(sig, &sa, nullptr);
  }
  g_signal = 0;
}

}  // namespace ringlet::detail
