// The fiber dump (ringlet/dump.hpp): every fiber of every scheduler, grouped Go-style.
//
// Each scheduler's fibers are read on its own thread: the caller's own core at once (the
// calling fiber is the only one running there), every other one by a collector posted to its
// loop, which runs between fibers; the caller waits for them with a bound. A suspended
// fiber's frames are read on its stack without resuming it (Scheduler::unwind_suspended);
// the addresses are named only after grouping, once per distinct address.
#include "ringlet/dump.hpp"
#include "ringlet/stats.hpp"

#include <fcntl.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "internal/backtrace.hpp"
#include "internal/dump.hpp"
#include "internal/native_thread.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

bool write_all(int fd, const std::string& text) noexcept {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = sys::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

namespace {

constexpr int kMaxFrames = 48;
constexpr auto kCoreWait = std::chrono::milliseconds(200);
constexpr std::size_t kNamesShown = 8;

struct FiberRec {
  std::uint64_t id = 0;
  std::string name;  // display name
  unsigned core = 0;
  FiberStatus status = FiberStatus::New;
  bool started = false;
  bool caller = false;   // the fiber that asked for the dump
  const char* what = nullptr;
  int fd = -1;
  std::uint64_t target_id = 0;
  std::string target_name;
  std::int64_t left_ns = -1;   // time left to the deadline; -1: none
  std::int64_t since_ns = -1;  // parked for; -1: not parked
  const void* spawned_from = nullptr;
  int stack = -1;  // index into the core's stacks
  const char* note = nullptr;  // why there are no frames
};

struct CoreRec {
  unsigned core = 0;
  int tid = 0;
  bool answered = false;
  std::vector<FiberRec> fibers;
  std::vector<std::vector<void*>> stacks;
  std::map<std::vector<void*>, int> stack_index;
  int intern(std::vector<void*>&& frames) {
    auto [it, fresh] = stack_index.try_emplace(std::move(frames), static_cast<int>(stacks.size()));
    if (fresh) stacks.push_back(it->first);
    return it->second;
  }
};

// Read every fiber of s, on s's thread. `self`: the calling fiber (running), if it is s's;
// `caller_ret`: the address the public call returns to, where its frames begin.
void collect(Scheduler* s, Fiber* self, const void* caller_ret, CoreRec& rec) {
  const std::int64_t now = coarse_now_ns();
  rec.core = s->core();
  rec.tid = s->os_tid();
  void* frames[kMaxFrames];
  for (Fiber* f = s->first_fiber(); f; f = st(f).all_next) {
    FiberRec r;
    const FiberState& fs = st(f);
    r.id = f->id;
    r.name = f->display_name();
    r.core = s->core();
    r.status = fs.status;
    r.started = fs.started;
    r.spawned_from = fs.spawned_from;
    if (fs.status == FiberStatus::Parked && fs.waiting) {
      const WaitInfo& w = *fs.waiting;
      r.what = w.what;
      r.fd = w.fd;
      if (w.target) {
        r.target_id = w.target->id;
        r.target_name = w.target->display_name();
      }
      if (!w.deadline.is_never())
        r.left_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(w.deadline.remaining()).count();
      r.since_ns = std::max<std::int64_t>(0, now - w.since_ns);
    }
    int depth = 0;
    if (f == self) {
      r.caller = true;
      const char* lo = fs.stack.lo;
      depth = unwind_here(frames, kMaxFrames, 0, lo, lo ? lo + fs.stack.size : nullptr);
      // Begin at the caller's own frame.
      for (int i = 0; i < depth; ++i)
        if (frames[i] == caller_ret) {
          std::memmove(frames, frames + i, sizeof(void*) * static_cast<std::size_t>(depth - i));
          depth -= i;
          break;
        }
    } else if (fs.status == FiberStatus::Gone) {
      r.note = "left behind in a forked child: not unwound";
    } else if (fs.status == FiberStatus::Running) {
      r.note = "running: not unwound";  // only the caller runs while a core is read
    } else if (!fs.started) {
      r.note = "not started yet";
    } else {
      depth = s->unwind_suspended(f, frames, kMaxFrames);
      if (depth == 0) r.note = "stack too full to unwind (less than 16 KiB left below where it stopped)";
    }
    if (depth > 0) r.stack = rec.intern(std::vector<void*>(frames, frames + depth));
    rec.fibers.push_back(std::move(r));
  }
  rec.answered = true;
}

// One dump's requests to the other schedulers, shared with their collectors (which may run
// after the dump gave up on them).
struct Request {
  std::atomic<int> state{0};  // 0 posted, 1 collecting, 2 done, 3 given up
  CoreRec rec;
};
struct Gather {
  SpinLock mu;
  Waiter waiter;
  std::size_t remaining = 0;
  bool closed = false;  // the caller stopped waiting: nobody may claim the waiter now
};

const char* state_name(const FiberRec& r) {
  if (r.caller) return "running (the caller)";
  switch (r.status) {
    case FiberStatus::Running: return "running";
    case FiberStatus::Ready: return r.started ? "runnable" : "new";
    case FiberStatus::Parked: return "parked";
    case FiberStatus::New: return "new";
    case FiberStatus::Done: return "done";
    case FiberStatus::Gone: return "gone";
  }
  return "?";
}

std::string duration(std::int64_t ns) {
  char b[48];
  if (ns < 1'000'000) std::snprintf(b, sizeof b, "%lld us", static_cast<long long>(ns / 1000));
  else if (ns < 10'000'000'000) std::snprintf(b, sizeof b, "%lld ms", static_cast<long long>(ns / 1'000'000));
  else if (ns < 600'000'000'000) std::snprintf(b, sizeof b, "%.1f s", static_cast<double>(ns) / 1e9);
  else std::snprintf(b, sizeof b, "%lld min", static_cast<long long>(ns / 60'000'000'000));
  return b;
}

std::string span(std::int64_t lo, std::int64_t hi) {
  return lo == hi || duration(lo) == duration(hi) ? duration(lo) : duration(lo) + " to " + duration(hi);
}

std::string process_name() {
  char b[64] = {};
  const int fd = ::open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const ssize_t n = sys::read(fd, b, sizeof b - 1);
    sys::close(fd);
    if (n > 0) b[n - (b[n - 1] == '\n' ? 1 : 0)] = '\0';
  }
  return b[0] ? b : "?";
}

struct Group {
  const FiberRec* first = nullptr;
  std::vector<const FiberRec*> members;
};

void format_dump(std::string& out, std::vector<CoreRec*>& cores, const CoreRec* own, const std::string& counters);

// Run fn on a stack of a thread's size: at once on a plain thread or a scheduler's loop, on
// a helper thread while a calling fiber waits.
void on_thread_stack(const std::function<void()>& fn) {
  if (!current_fiber()) {
    fn();
    return;
  }
  auto done = std::make_shared<Gather>();
  done->waiter.arm();
  std::exception_ptr error;
  NativeThread helper([&fn, &error, done] {
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<SpinLock> g(done->mu);
    done->waiter.claim();
  });
  WaitSpec spec;
  spec.what = "the fiber dump (naming frames)";
  spec.interruptible = false;
  spec.remote = true;
  (void)detail::wait(done->waiter, spec);
  helper.join();
  if (error) std::rethrow_exception(error);
}

void write_dump(std::string& out, const void* caller_ret) {
  // Which schedulers there are: their links, so that one ending meanwhile is not posted to.
  struct Target {
    std::shared_ptr<SchedulerLink> link;
    Scheduler* s;
    unsigned core;
    int tid;
  };
  std::vector<Target> others;
  Scheduler* mine = Scheduler::current();
  Fiber* self = current_fiber();
  Scheduler::for_each_scheduler([&](Scheduler* s) {
    if (s != mine) others.push_back(Target{s->link(), s, s->core(), s->os_tid()});
  });

  auto gather = std::make_shared<Gather>();
  std::vector<std::shared_ptr<Request>> requests;
  gather->waiter.arm();
  gather->remaining = others.size();
  for (const Target& t : others) {
    auto req = std::make_shared<Request>();
    req->rec.core = t.core;
    req->rec.tid = t.tid;
    requests.push_back(req);
    std::lock_guard<std::mutex> lk(t.link->mu);
    if (!t.link->sched) {  // ended since: nothing to read
      req->state.store(3, std::memory_order_relaxed);
      std::lock_guard<SpinLock> g(gather->mu);
      if (--gather->remaining == 0) gather->waiter.claim();
      continue;
    }
    t.link->sched->post_call([gather, req] {
      int expected = 0;
      if (!req->state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return;
      collect(Scheduler::current(), nullptr, nullptr, req->rec);
      req->state.store(2, std::memory_order_release);
      std::lock_guard<SpinLock> g(gather->mu);
      if (!gather->closed && --gather->remaining == 0) gather->waiter.claim();
    });
  }

  CoreRec own;
  if (mine) collect(mine, self, caller_ret, own);

  // Once armed and possibly claimed, the waiter must wait: a claim before the wait makes a
  // fiber ready, and only its park takes that back (skipping it would resume it later out of
  // turn). A claim that came first makes the wait return at once.
  if (!others.empty()) {
    WaitSpec spec;
    spec.what = "the fiber dump (other cores)";
    spec.deadline = Deadline::after(kCoreWait);
    spec.interruptible = false;
    spec.remote = true;
    (void)detail::wait(gather->waiter, spec);
  }
  {
    std::lock_guard<SpinLock> g(gather->mu);
    gather->closed = true;
  }
  for (auto& req : requests) {
    int expected = 0;
    if (req->state.compare_exchange_strong(expected, 3, std::memory_order_acq_rel)) continue;
    while (req->state.load(std::memory_order_acquire) == 1) ::sched_yield();  // it is answering now
  }

  std::vector<CoreRec*> cores;
  if (mine) cores.push_back(&own);
  for (auto& req : requests) cores.push_back(&req->rec);
  std::sort(cores.begin(), cores.end(), [](const CoreRec* a, const CoreRec* b) {
    return std::tie(a->core, a->tid) < std::tie(b->core, b->tid);
  });

  // Naming frames (libdw reading debug information) needs far more stack than a fiber's:
  // on a fiber it is done on a thread of its own while the fiber waits.
  // The counters as of now (ringlet::stats(): every core's, read relaxed) for the header.
  const std::string counters = format_stats(stats(), "  ");
  on_thread_stack([&] { format_dump(out, cores, &own, counters); });
}

void format_dump(std::string& out, std::vector<CoreRec*>& cores, const CoreRec* own_core,
                 const std::string& counters) {
  const CoreRec& own = *own_core;
  // Groups: same state, same wait, same frames (across cores).
  std::map<std::vector<void*>, int> global_stacks;
  std::vector<const std::vector<void*>*> stack_of;
  std::map<std::tuple<std::string, std::string, int, std::string>, Group> groups;
  std::size_t total = 0;
  for (CoreRec* c : cores) {
    std::vector<int> remap(c->stacks.size());
    for (std::size_t i = 0; i < c->stacks.size(); ++i) {
      auto [it, fresh] = global_stacks.try_emplace(c->stacks[i], static_cast<int>(stack_of.size()));
      if (fresh) stack_of.push_back(&it->first);
      remap[i] = it->second;
    }
    for (FiberRec& r : c->fibers) {
      ++total;
      if (r.stack >= 0) r.stack = remap[static_cast<std::size_t>(r.stack)];
      // The caller is always an entry of its own.
      const std::string state = r.caller ? "caller" + std::to_string(r.id) : state_name(r);
      Group& g = groups[{state, r.what ? r.what : "", r.stack, r.note ? r.note : ""}];
      if (!g.first) g.first = &r;
      g.members.push_back(&r);
    }
  }
  std::vector<Group*> order;
  for (auto& [k, g] : groups) {
    std::sort(g.members.begin(), g.members.end(),
              [](const FiberRec* a, const FiberRec* b) { return std::tie(a->core, a->id) < std::tie(b->core, b->id); });
    g.first = g.members.front();
    order.push_back(&g);
  }
  std::stable_sort(order.begin(), order.end(), [](const Group* a, const Group* b) {
    if (a->first->caller != b->first->caller) return a->first->caller;
    if (a->members.size() != b->members.size()) return a->members.size() > b->members.size();
    return a->first->id < b->first->id;
  });

  Symbolizer sym;
  char line[256];
  out += "ringlet fiber dump: process " + process_name() + " (pid " + std::to_string(::getpid()) + "), " +
         std::to_string(cores.size()) + (cores.size() == 1 ? " scheduler, " : " schedulers, ") +
         std::to_string(total) + (total == 1 ? " fiber" : " fibers") + ", " + std::to_string(groups.size()) +
         (groups.size() == 1 ? " entry" : " entries") + "\n";
  out += counters;
  for (const CoreRec* c : cores) {
    std::snprintf(line, sizeof line, "  core %u (thread %d): ", c->core, c->tid);
    out += line;
    if (c->answered)
      out += std::to_string(c->fibers.size()) + (c->fibers.size() == 1 ? " fiber" : " fibers") +
             (c == &own ? ", the caller's own" : "") + "\n";
    else
      out += "did not answer within " + std::to_string(kCoreWait.count()) +
             " ms: a fiber holds it without switching (or its loop has ended); its fibers are not listed\n";
  }
  if (!sym.limits().empty()) out += "  (" + sym.limits() + ")\n";

  for (const Group* g : order) {
    const FiberRec& r = *g->first;
    const std::size_t n = g->members.size();
    out += "\n";
    if (n == 1) {
      out += "fiber #" + std::to_string(r.id) + " '" + r.name + "' [core " + std::to_string(r.core) + "]: ";
    } else {
      unsigned lo_core = ~0u, hi_core = 0;
      for (const FiberRec* m : g->members) {
        lo_core = std::min(lo_core, m->core);
        hi_core = std::max(hi_core, m->core);
      }
      out += "\xC3\x97" + std::to_string(n) + " fibers [core " + std::to_string(lo_core) +
             (hi_core != lo_core ? "-" + std::to_string(hi_core) : "") + "]: ";
    }
    out += state_name(r);
    if (r.what) out += std::string(" in ") + r.what;
    // The descriptors, the joined fiber, the time parked and the deadlines, over the group.
    std::vector<int> fds;
    std::int64_t since_lo = INT64_MAX, since_hi = -1, left_lo = INT64_MAX, left_hi = -1;
    std::size_t with_deadline = 0;
    for (const FiberRec* m : g->members) {
      if (m->fd >= 0 && fds.size() <= kNamesShown && std::find(fds.begin(), fds.end(), m->fd) == fds.end())
        fds.push_back(m->fd);
      if (m->since_ns >= 0) since_lo = std::min(since_lo, m->since_ns), since_hi = std::max(since_hi, m->since_ns);
      if (m->left_ns >= 0) {
        ++with_deadline;
        left_lo = std::min(left_lo, m->left_ns);
        left_hi = std::max(left_hi, m->left_ns);
      }
    }
    if (!fds.empty()) {
      out += n == 1 ? " (fd " : " (fds ";
      for (std::size_t i = 0; i < fds.size() && i < kNamesShown; ++i) out += (i ? ", " : "") + std::to_string(fds[i]);
      if (fds.size() > kNamesShown) out += ", ...";
      out += ")";
    }
    if (n == 1 && r.target_id) out += " of fiber #" + std::to_string(r.target_id) + " '" + r.target_name + "'";
    if (since_hi >= 0) out += " for " + span(since_lo, since_hi);
    if (with_deadline > 0) {
      out += ", deadline in " + span(left_lo, left_hi);
      if (with_deadline != n) out += " (" + std::to_string(with_deadline) + " of them)";
    }
    out += "\n";
    if (n > 1) {
      out += "    ";
      for (std::size_t i = 0; i < n && i < kNamesShown; ++i)
        out += (i ? ", #" : "#") + std::to_string(g->members[i]->id) + " '" + g->members[i]->name + "'";
      if (n > kNamesShown) out += ", ... (" + std::to_string(n - kNamesShown) + " more)";
      out += "\n";
    }
    bool same_origin = true;
    for (const FiberRec* m : g->members) same_origin = same_origin && m->spawned_from == r.spawned_from;
    if (!same_origin) out += "    spawned from several places\n";
    else if (r.spawned_from) out += "    spawned from " + sym.describe(r.spawned_from) + "\n";
    if (r.note) out += std::string("    (") + r.note + ")\n";
    if (r.stack >= 0) {
      const std::vector<void*>& frames = *stack_of[static_cast<std::size_t>(r.stack)];
      for (std::size_t i = 0; i < frames.size(); ++i)
        out += "    #" + std::to_string(i) + " " + sym.describe(frames[i]) + "\n";
    }
  }
  out += "\nend of the fiber dump\n";
}

}  // namespace

}  // namespace ringlet::detail

namespace ringlet {

namespace detail {
__attribute__((noinline)) std::string build_dump(const void* caller_ret) {
  std::string out;
  detail::write_dump(out, caller_ret);
  return out;
}
}  // namespace detail

__attribute__((noinline)) void dump(std::ostream& out) {
  const std::string text = detail::build_dump(__builtin_return_address(0));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.flush();
}

__attribute__((noinline)) std::string dump_text() { return detail::build_dump(__builtin_return_address(0)); }

}  // namespace ringlet

extern "C" __attribute__((noinline)) int ringlet_dump_fd(int fd) {
  std::string text;
  try {
    text = ringlet::detail::build_dump(__builtin_return_address(0));
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
  return ringlet::detail::write_all(fd, text) ? 0 : -errno;
}
