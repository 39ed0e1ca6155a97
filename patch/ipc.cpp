// Message queues and System V semaphores on a fiber (socket group): semop/semtimedop,
// msgsnd/msgrcv, mq_send/mq_receive and their timed forms. Each first makes the call that
// cannot block (IPC_NOWAIT; for a POSIX queue, its timed form with a deadline already
// past); when it would wait, the real call runs on a helper thread (offload.hpp) while the
// fiber parks. The queues and semaphore sets are the process's (SEM_UNDO adjustments too),
// so the helper's call has the caller's effect. A signal handler that runs meanwhile ends
// the System V calls with EINTR whatever its flags (they are never restarted); the POSIX
// queue calls restart under SA_RESTART (man 7 signal).
#include <mqueue.h>
#include <sys/msg.h>
#include <sys/sem.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "offload.hpp"
#include "state.hpp"
#include "thread/cancel.hpp"

namespace ringlet::patch::detail {
namespace {

inline bool on_a_fiber() noexcept {
  return RINGLET_UNLIKELY(ringlet::detail::Scheduler::current() != nullptr) && on_fiber(Socket);
}

RINGLET_SLOW int semop_slow(int id, sembuf* sops, size_t n, const timespec* timeout, bool timed) noexcept {
  count_on_fiber(Call::ipc);
  // The same operations with IPC_NOWAIT: EAGAIN if they would wait.
  bool all_nowait = true;
  std::vector<sembuf> nowait;
  if (sops && n > 0 && n <= 4096) {
    try {
      nowait.assign(sops, sops + n);
    } catch (...) {
      nowait.clear();
    }
  }
  if (!nowait.empty()) {
    for (sembuf& s : nowait) {
      if (!(s.sem_flg & IPC_NOWAIT)) all_nowait = false;
      s.sem_flg = static_cast<short>(s.sem_flg | IPC_NOWAIT);
    }
    if (all_nowait) return timed ? RINGLET_REAL(semtimedop)(id, sops, n, timeout) : RINGLET_REAL(semop)(id, sops, n);
    const int r = RINGLET_REAL(semop)(id, nowait.data(), n);
    if (r == 0 || errno != EAGAIN) return r;  // done, or EINVAL/E2BIG/EFBIG/EIDRM...
  }
  // semtimedop's relative timeout (or null) bounds the helper's call.
  auto call = [=] { return timed ? RINGLET_REAL(semtimedop)(id, sops, n, timeout) : RINGLET_REAL(semop)(id, sops, n); };
  long res;
  if (!offload_call(call, OffloadMode::NeverRestarted, "semop (patched)", &res)) return call();
  count_waited(Call::ipc);
  return static_cast<int>(res);
}

struct MsgCall {
  int id;
  void* buf;
  size_t size;
  long type;
  int flags;
  bool rcv;
};

RINGLET_SLOW ssize_t msg_slow(MsgCall c) noexcept {
  count_on_fiber(Call::ipc);
  const ssize_t r = c.rcv ? RINGLET_REAL(msgrcv)(c.id, c.buf, c.size, c.type, c.flags | IPC_NOWAIT)
                          : RINGLET_REAL(msgsnd)(c.id, c.buf, c.size, c.flags | IPC_NOWAIT);
  if (r >= 0 || errno != (c.rcv ? ENOMSG : EAGAIN)) return r;
  auto call = [&c]() -> ssize_t {
    return c.rcv ? RINGLET_REAL(msgrcv)(c.id, c.buf, c.size, c.type, c.flags)
                 : RINGLET_REAL(msgsnd)(c.id, c.buf, c.size, c.flags);
  };
  long res;
  if (!offload_call(call, OffloadMode::NeverRestarted, c.rcv ? "msgrcv (patched)" : "msgsnd (patched)", &res))
    return call();
  count_waited(Call::ipc);
  return res;
}

struct MqCall {
  mqd_t q;
  char* buf;  // receive
  const char* cbuf;  // send
  size_t len;
  unsigned* prio_out;
  unsigned prio;
  const timespec* abs;  // null: no timeout (mq_timedreceive too, as the kernel takes it)
  bool rcv;
};

ssize_t mq_real(const MqCall& c, const timespec* abs) noexcept {
  if (c.rcv)
    return abs ? RINGLET_REAL(mq_timedreceive)(c.q, c.buf, c.len, c.prio_out, abs)
               : RINGLET_REAL(mq_receive)(c.q, c.buf, c.len, c.prio_out);
  return abs ? RINGLET_REAL(mq_timedsend)(c.q, c.cbuf, c.len, c.prio, abs)
             : RINGLET_REAL(mq_send)(c.q, c.cbuf, c.len, c.prio);
}

RINGLET_SLOW ssize_t mq_slow(MqCall c) noexcept {
  count_on_fiber(Call::ipc);
  mq_attr attr{};
  if (RINGLET_REAL(mq_getattr)(c.q, &attr) != 0 || (attr.mq_flags & O_NONBLOCK)) return mq_real(c, c.abs);
  // A deadline already past: the call answers at once, ETIMEDOUT if it would wait.
  const timespec past{0, 0};
  const int saved = errno;
  const ssize_t r = mq_real(c, &past);
  if (r >= 0 || errno != ETIMEDOUT) return r;
  errno = saved;
  auto call = [&c] { return mq_real(c, c.abs); };
  long res;
  if (!offload_call(call, c.abs ? OffloadMode::NeverRestarted : OffloadMode::Restartable,
                    c.rcv ? "mq_receive (patched)" : "mq_send (patched)", &res))
    return call();
  count_waited(Call::ipc);
  return res;
}

}  // namespace
}  // namespace ringlet::patch::detail

using namespace ringlet::patch::detail;

RINGLET_HOOK int semop(int id, struct sembuf* sops, size_t n) {
  if (!on_a_fiber()) return RINGLET_REAL(semop)(id, sops, n);
  return semop_slow(id, sops, n, nullptr, false);
}

RINGLET_HOOK int semtimedop(int id, struct sembuf* sops, size_t n, const struct timespec* timeout) {
  if (!on_a_fiber()) return RINGLET_REAL(semtimedop)(id, sops, n, timeout);
  return semop_slow(id, sops, n, timeout, true);
}

static int cancel_point_msgsnd(int id, const void* msg, size_t size, int flags) noexcept {
  if (!on_a_fiber() || (flags & IPC_NOWAIT)) return RINGLET_REAL(msgsnd)(id, msg, size, flags);
  return static_cast<int>(msg_slow(MsgCall{id, const_cast<void*>(msg), size, 0, flags, false}));
}

RINGLET_HOOK int msgsnd(int id, const void* msg, size_t size, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point_msgsnd(id, msg, size, flags));
}

static ssize_t cancel_point_msgrcv(int id, void* msg, size_t size, long type, int flags) noexcept {
  if (!on_a_fiber() || (flags & IPC_NOWAIT)) return RINGLET_REAL(msgrcv)(id, msg, size, type, flags);
  return msg_slow(MsgCall{id, msg, size, type, flags, true});
}

RINGLET_HOOK ssize_t msgrcv(int id, void* msg, size_t size, long type, int flags) {
  return RINGLET_CANCEL_POINT(cancel_point_msgrcv(id, msg, size, type, flags));
}

static ssize_t cancel_point_mq_receive(mqd_t q, char* buf, size_t len, unsigned* prio) noexcept {
  if (!on_a_fiber()) return RINGLET_REAL(mq_receive)(q, buf, len, prio);
  return mq_slow(MqCall{q, buf, nullptr, len, prio, 0, nullptr, true});
}

RINGLET_HOOK ssize_t mq_receive(mqd_t q, char* buf, size_t len, unsigned* prio) {
  return RINGLET_CANCEL_POINT(cancel_point_mq_receive(q, buf, len, prio));
}

static ssize_t cancel_point_mq_timedreceive(mqd_t q, char* buf, size_t len, unsigned* prio, const struct timespec* abs) noexcept {
  if (!on_a_fiber()) return RINGLET_REAL(mq_timedreceive)(q, buf, len, prio, abs);
  return mq_slow(MqCall{q, buf, nullptr, len, prio, 0, abs, true});
}

RINGLET_HOOK ssize_t mq_timedreceive(mqd_t q, char* buf, size_t len, unsigned* prio, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_mq_timedreceive(q, buf, len, prio, abs));
}

static int cancel_point_mq_send(mqd_t q, const char* buf, size_t len, unsigned prio) noexcept {
  if (!on_a_fiber()) return RINGLET_REAL(mq_send)(q, buf, len, prio);
  return static_cast<int>(mq_slow(MqCall{q, nullptr, buf, len, nullptr, prio, nullptr, false}));
}

RINGLET_HOOK int mq_send(mqd_t q, const char* buf, size_t len, unsigned prio) {
  return RINGLET_CANCEL_POINT(cancel_point_mq_send(q, buf, len, prio));
}

static int cancel_point_mq_timedsend(mqd_t q, const char* buf, size_t len, unsigned prio, const struct timespec* abs) noexcept {
  if (!on_a_fiber()) return RINGLET_REAL(mq_timedsend)(q, buf, len, prio, abs);
  return static_cast<int>(mq_slow(MqCall{q, nullptr, buf, len, nullptr, prio, abs, false}));
}

RINGLET_HOOK int mq_timedsend(mqd_t q, const char* buf, size_t len, unsigned prio, const struct timespec* abs) {
  return RINGLET_CANCEL_POINT(cancel_point_mq_timedsend(q, buf, len, prio, abs));
}
