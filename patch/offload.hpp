// Moving a blocking call to a helper OS thread of ours while the calling fiber parks
// (offload.cpp). For calls whose effect belongs to the process or to the open file, not to
// the calling OS thread: record locks (the process's), OFD and flock locks (the open
// file's), a FIFO's open (a descriptor of the process), semaphores, barriers and the wait
// of a process-shared condition variable (no owner).
//
// The helpers block every signal but one internal signal (kHelperSignal), installed without
// SA_RESTART and with a handler that does nothing, so that a fiber can end its helper's
// call with EINTR (a signal handler of the program ran on the carrier, or the fiber was
// killed). A call that had already succeeded stands (a lock taken stays held, a FIFO's
// descriptor is returned), as natively.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "ringlet/detail/wait.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

// How a signal handler that runs on the carrier while the fiber waits ends the call.
enum class OffloadMode {
  // Restarted if every handler that ran has SA_RESTART, else EINTR (flock, F_SETLKW, open of
  // a FIFO, sem_wait: man 7 signal). A kill or Timeout ends it (EINTR / ETIMEDOUT).
  Restartable,
  // EINTR whatever the handler's flags (sem_timedwait: the kernel's restart block).
  NeverRestarted,
  // Nothing ends it but its own return (a condition variable's or a barrier's wait: glibc
  // retries these itself); a kill stays pending.
  Uninterruptible,
};

struct OffloadJob {
  // The call, made on the helper: returns its result, errno in `err` when it fails. Re-made
  // while it fails with EINTR and the fiber has not asked for it to end (a late internal
  // signal).
  long (*run)(OffloadJob&) = nullptr;
  void* ctx = nullptr;
  long res = -1;
  int err = 0;
  std::atomic<bool> cancel{false};
  std::atomic<int> stage{0};  // free for the call's own hand-shake (cond wait)
  // Set by the pool and the helper; read by the fiber.
  ringlet::detail::SpinLock mu;
  ringlet::detail::WaitList waiters;
  bool started = false;  // the helper has taken it (then `helper` names it)
  bool done = false;
  pthread_t helper{};
};

// Hand the job to a helper (a new one if none idles). False if no thread could be made:
// the caller then makes the call itself.
bool offload_submit(OffloadJob& j) noexcept;
// Park until the job is done, ending it early as `mode` says. Afterwards j.res/j.err are
// the call's; a call ended by the fiber answers -1 with errno EINTR (a kill or signal) or
// ETIMEDOUT (an enclosing Timeout).
void offload_wait(OffloadJob& j, OffloadMode mode, const char* what) noexcept;

// submit + wait; false if it could not be submitted.
inline bool offload(OffloadJob& j, OffloadMode mode, const char* what) noexcept {
  if (!offload_submit(j)) return false;
  offload_wait(j, mode, what);
  return true;
}

// Make `call` (a blocking libc call: it returns its result, errno set when it fails) on a
// helper while the fiber parks, ended early as `mode` says. False if no helper could be made
// (the caller then makes the call itself); else true, *res the call's answer and errno set
// when it failed, as libc gives it.
template <class F>
bool offload_call(F& call, OffloadMode mode, const char* what, long* res) noexcept {
  OffloadJob j;
  j.ctx = &call;
  j.run = [](OffloadJob& job) -> long {
    const long r = (*static_cast<F*>(job.ctx))();
    job.err = errno;
    return r;
  };
  if (!offload(j, mode, what)) return false;
  if (j.res == -1) errno = j.err;
  *res = j.res;
  return true;
}

// Park the fiber for about `ns` (a bounded poll's pause); a kill or a signal does not end it
// early unless `interruptible`. Returns how the sleep ended.
ringlet::detail::Woke poll_pause(std::int64_t ns, bool interruptible) noexcept;

// The bounded poll of a glibc object shared with other processes, whose waking we cannot
// see: attempt() (a trylock) until it answers other than EBUSY, pausing 50 us, doubling up
// to 10 ms, between attempts; ETIMEDOUT once d has passed. A signal or kill does not end
// it (a lock's wait has no EINTR).
constexpr std::int64_t kPollFirstNs = 50'000;
constexpr std::int64_t kPollCapNs = 10'000'000;
template <class Attempt>
int poll_until(Attempt attempt, ringlet::Deadline d) noexcept {
  std::int64_t pause = kPollFirstNs;
  for (;;) {
    const int r = attempt();
    if (r != EBUSY) return r;
    if (d.passed()) return ETIMEDOUT;
    std::int64_t left = pause;
    if (!d.is_never())
      left = std::chrono::duration_cast<std::chrono::nanoseconds>(d.remaining()).count();
    (void)poll_pause(left < pause ? (left > 0 ? left : 0) : pause, false);
    if (pause < kPollCapNs) pause = pause * 2 < kPollCapNs ? pause * 2 : kPollCapNs;
  }
}

// Which fiber holds an object that glibc sees as held by the carrier (an error-checking or
// recursive process-shared mutex, an rwlock's write lock): glibc records the OS thread's
// id, the same for every fiber thread of the carrier. Keyed by address; a small table.
const void* held_by(const void* obj) noexcept;
// False if the table is full (the caller answers EAGAIN: too many such locks held).
bool note_holder(const void* obj, const void* who) noexcept;
void forget_holder(const void* obj) noexcept;

}  // namespace ringlet::patch::detail
