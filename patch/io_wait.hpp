// The patch's wait for readiness, shared by the hooks that wait before they call (accept,
// connect, sendfile) and the restart rule of every hook that waits (io.cpp, sockets.cpp).
#pragma once

#include <cerrno>

#include "internal/io.hpp"
#include "state.hpp"

namespace ringlet::patch::detail {

// A wait that a signal ended: true if the kernel would restart the call (every handler
// that ran since `at` has SA_RESTART, and the call has no timeout).
inline bool restarts(Woke why, ringlet::Deadline d, const SignalCounts& at) noexcept {
  return why == Woke::Interrupted && d.is_never() && thread_signals().no_restart == at.no_restart;
}

// Wait on the reactor until fd is ready for `events` (accept, connect, sendfile): 0 when it
// is, -1 with errno when the wait failed, met its deadline (errno `at_deadline`), was
// killed or interrupted by a signal whose handler lacks SA_RESTART (a restartable one waits
// again, as the kernel would without a deadline).
inline int wait_ready(int fd, short events, ringlet::Deadline d, const SignalCounts& at, Call c,
                      const char* what, int at_deadline = EAGAIN) noexcept {
  for (;;) {
    const int saved = errno;
    const IoOutcome o = perform_patched(ringlet::detail::poll_request(fd, events, what), d);
    count_waited(c);
    if (o.why == Woke::Notified) {
      if (o.res >= 0) {
        errno = saved;  // as a call that did not fail leaves it
        return 0;
      }
      errno = static_cast<int>(-o.res);
      return -1;
    }
    if (restarts(o.why, d, at)) continue;
    errno = o.why == Woke::Deadline ? at_deadline : woke_errno(o.why);
    return -1;
  }
}

}  // namespace ringlet::patch::detail
