// What is asked of a fiber thread by its pthread_t: pthread_kill, its name, its attributes,
// its scheduling and affinity (those of the OS thread that carries it), its CPU clock's id;
// and sched_yield.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

#include <cstring>
#include <string>

#include "common.hpp"
#include "internal/fiber_state.hpp"

using namespace ringlet::patch::detail;
using ringlet::patch::Thread;

RINGLET_HOOK int pthread_kill(pthread_t t, int sig) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_kill)(t, sig);
  ThreadRec* r = rec_of(t);
  if (!r || r->done) return ESRCH;
  return signal_fiber_thread(r, sig);  // signal_route.cpp
}

RINGLET_HOOK int pthread_setname_np(pthread_t t, const char* name) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_setname_np)(t, name);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  const std::size_t n = std::strlen(name);
  if (n > 15) return ERANGE;
  r->mu.lock();
  std::memcpy(r->name, name, n + 1);
  r->mu.unlock();
  // The fiber's own name (the monitor's reports, the dump, gdb): set by its scheduler.
  Fiber* f = fiber_of(r);
  if (!f) return 0;
  if (Scheduler::current() == st(f).sched) {
    f->name = name;
    return 0;
  }
  try {  // a thread on another carrier: its scheduler sets it (the handle keeps the fiber)
    st(f).sched->post_call([g = r->handle, n = std::string(name)] {
      if (Fiber* f = g.native()) f->name = n;
    });
  } catch (...) {
    // No memory for the call: pthread_getname_np still answers the name; reports keep the old.
  }
  return 0;
}

RINGLET_HOOK int pthread_getname_np(pthread_t t, char* buf, size_t len) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_getname_np)(t, buf, len);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  r->mu.lock();
  const std::string n = r->name[0] ? std::string(r->name) : std::string();
  r->mu.unlock();
  if (n.empty()) {  // never named: the fiber's own ("thread-N"), set before it was spawned
    Fiber* f = fiber_of(r);
    const std::string dflt = f ? f->display_name() : std::string();
    if (dflt.size() + 1 > len) return ERANGE;
    std::memcpy(buf, dflt.c_str(), dflt.size() + 1);
    return 0;
  }
  if (n.size() + 1 > len) return ERANGE;
  std::memcpy(buf, n.c_str(), n.size() + 1);
  return 0;
}

RINGLET_HOOK RINGLET_NO_TSAN int pthread_getattr_np(pthread_t t, pthread_attr_t* attr) {
  // A real thread's: TSan's set-up of a new thread asks before that thread has a TSan state,
  // so nothing on this path is instrumented (is_fake would be an instrumented call).
  if (!(reinterpret_cast<std::uintptr_t>(t) & 1u)) return RINGLET_REAL(pthread_getattr_np)(t, attr);
  ThreadRec* r = rec_of(t);
  if (!r) return ESRCH;
  if (int e = pthread_attr_init(attr)) return e;
  if (Fiber* f = fiber_of(r); f && st(f).stack.lo)
    pthread_attr_setstack(attr, st(f).stack.lo, st(f).stack.size);
  if (r->detached) pthread_attr_setdetachstate(attr, PTHREAD_CREATE_DETACHED);
  return 0;
}

// The scheduling and affinity calls name the OS thread that carries the fiber.
#define RINGLET_ON_CARRIER(fn, t, ...)                                          \
  do {                                                                          \
    if (is_fake(t)) {                                                           \
      ThreadRec* r = rec_of(t);                                                 \
      if (!r) return ESRCH;                                                     \
      t = r->carrier ? r->carrier : RINGLET_REAL(pthread_self)();               \
    }                                                                           \
    return RINGLET_REAL(fn)(t, __VA_ARGS__);                                    \
  } while (0)

RINGLET_HOOK int pthread_getschedparam(pthread_t t, int* policy, struct sched_param* p) {
  RINGLET_ON_CARRIER(pthread_getschedparam, t, policy, p);
}
RINGLET_HOOK int pthread_setschedparam(pthread_t t, int policy, const struct sched_param* p) {
  RINGLET_ON_CARRIER(pthread_setschedparam, t, policy, p);
}
RINGLET_HOOK int pthread_setschedprio(pthread_t t, int prio) { RINGLET_ON_CARRIER(pthread_setschedprio, t, prio); }
RINGLET_HOOK int pthread_getaffinity_np(pthread_t t, size_t n, cpu_set_t* set) {
  RINGLET_ON_CARRIER(pthread_getaffinity_np, t, n, set);
}
RINGLET_HOOK int pthread_setaffinity_np(pthread_t t, size_t n, const cpu_set_t* set) {
  RINGLET_ON_CARRIER(pthread_setaffinity_np, t, n, set);
}
// A fiber thread's CPU clock is its own (cpu_clock.cpp); main's real pthread_t gives its OS
// thread's clock id, which the clock calls answer with main's time.
RINGLET_HOOK int pthread_getcpuclockid(pthread_t t, clockid_t* clock) {
  if (!is_fake(t)) return RINGLET_REAL(pthread_getcpuclockid)(t, clock);
  ThreadRec* r = rec_of(t);
  return r ? fiber_thread_cpuclockid(r, clock) : ESRCH;
}

RINGLET_HOOK int sched_yield(void) {
  if (Here h = on_fiber(Thread)) {
    count_on_fiber(Call::sched_yield);
    h.s->yield_nothrow();
    return 0;
  }
  return RINGLET_REAL(sched_yield)();
}
