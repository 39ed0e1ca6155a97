// A fiber thread's kernel-style id: gettid() and syscall(SYS_gettid) give each fiber thread
// an id of its own, fixed for its life, above PID_MAX_LIMIT (4 194 304, the most the kernel
// ever hands out), so that no kill/tgkill/sched_* call with it can reach another process or
// another thread: the kernel answers ESRCH. The calls that take a thread id understand the
// ids of live fiber threads as pthread_kill and the affinity calls understand their
// pthread_t (the signal or the affinity is the carrying OS thread's). main, ringlet's own
// fibers and plain threads keep their real ids.
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <unordered_map>

#include "common.hpp"
#include "identity.hpp"

namespace ringlet::patch::detail {
namespace {

std::mutex g_ids_mu;
std::unordered_map<pid_t, ThreadRec*>* g_ids = nullptr;  // live fiber threads by id
pid_t g_next_id = kPidMaxLimit + 1;

pid_t real_gettid() noexcept { return static_cast<pid_t>(RINGLET_REAL(syscall)(SYS_gettid)); }

// The live fiber thread with this id, or null. Its carrier's kernel id in *carrier.
bool find_live(pid_t tid, pid_t* carrier) noexcept {
  if (tid <= kPidMaxLimit) return false;
  std::lock_guard<std::mutex> lock(g_ids_mu);
  if (!g_ids) return false;
  auto it = g_ids->find(tid);
  if (it == g_ids->end()) return false;
  *carrier = it->second->carrier_tid;
  return true;
}

}  // namespace

bool assign_thread_id(ThreadRec* r) noexcept {
  std::lock_guard<std::mutex> lock(g_ids_mu);
  try {
    if (!g_ids) g_ids = new std::unordered_map<pid_t, ThreadRec*>;
    for (;;) {
      const pid_t id = g_next_id;
      g_next_id = id == 0x7fffffff ? kPidMaxLimit + 1 : id + 1;
      if (g_ids->emplace(id, r).second) {
        r->tid = id;
        return true;
      }
    }
  } catch (...) {
    return false;
  }
}

void release_thread_id(ThreadRec* r) noexcept {
  if (!r->tid) return;
  std::lock_guard<std::mutex> lock(g_ids_mu);
  if (g_ids) g_ids->erase(r->tid);
  r->tid = 0;
}

void forget_thread_ids_after_fork(ThreadRec* keep) noexcept {
  // The child's one thread has the id the kernel gave it, which is the child's pid.
  if (g_ids) g_ids->clear();
  if (keep) {
    keep->tid = 0;
    keep->carrier_tid = real_gettid();
  }
}

pid_t patched_gettid() noexcept {
  if (ThreadRec* r = current_rec(); r && r->tid) return r->tid;
  return real_gettid();
}

// tgkill / tkill for an id; -2 when it is no fiber thread's (the caller goes to the kernel).
long signal_thread_id(pid_t tgid, pid_t tid, int sig) noexcept {
  if (tid <= kPidMaxLimit || (tgid != -1 && tgid != getpid())) return -2;
  ThreadRec* r = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_ids_mu);
    if (!g_ids) return -2;
    auto it = g_ids->find(tid);
    if (it == g_ids->end()) return -2;
    r = it->second;
  }
  // Fiber threads end on their carrier, where this runs too (or the signal goes to the
  // carrier from a plain thread): r stays valid.
  if (const int e = signal_fiber_thread(r, sig)) {
    errno = e;
    return -1;
  }
  return 0;
}

bool fiber_thread_cpu_ns(pid_t tid, std::uint64_t* ns) noexcept {
  if (tid <= kPidMaxLimit) return false;
  std::lock_guard<std::mutex> lock(g_ids_mu);  // the record and its fiber stay while listed
  if (!g_ids) return false;
  auto it = g_ids->find(tid);
  if (it == g_ids->end()) return false;
  const Fiber* f = it->second->handle.native();  // null: pthread_create has not returned yet
  *ns = f ? Scheduler::cpu_time_ns(f) : 0;
  return true;
}

// The kernel id to use for a sched_*affinity call about `pid`.
pid_t affinity_target(pid_t pid) noexcept {
  pid_t carrier = 0;
  return find_live(pid, &carrier) ? carrier : pid;
}

}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK pid_t gettid(void) { return patched_gettid(); }

RINGLET_HOOK int tgkill(pid_t tgid, pid_t tid, int sig) {
  const long r = signal_thread_id(tgid, tid, sig);
  if (r != -2) return static_cast<int>(r);
  return RINGLET_REAL(tgkill)(tgid, tid, sig);
}

RINGLET_HOOK int sched_getaffinity(pid_t pid, size_t size, cpu_set_t* set) {
  return RINGLET_REAL(sched_getaffinity)(affinity_target(pid), size, set);
}

RINGLET_HOOK int sched_setaffinity(pid_t pid, size_t size, const cpu_set_t* set) {
  return RINGLET_REAL(sched_setaffinity)(affinity_target(pid), size, set);
}
