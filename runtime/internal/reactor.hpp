// The reactor: the scheduler's interface to the kernel. One backend per file
// (uring_reactor.cpp, epoll_reactor.cpp), chosen by probing.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ringlet/detail/fiber.hpp"
#include "ringlet/detail/wait.hpp"

namespace ringlet::detail {

class Scheduler;

// One blocking operation on a file descriptor, described independently of the backend.
struct IoRequest {
  enum class Op : std::uint8_t {
    Read, Write, Readv, Writev, Recv, Send, RecvMsg, SendMsg, Poll,
    Accept,  // buf: sockaddr* (or null), aux: socklen_t*, flags: SOCK_NONBLOCK|SOCK_CLOEXEC
  };
  Op op = Op::Read;
  int fd = -1;
  union {
    void* buf;
    const void* cbuf;
    const iovec* iov;
    msghdr* msg;
  };
  std::uint32_t len = 0;      // bytes; iovec count; poll events
  int flags = 0;              // MSG_* flags for Recv/Send/RecvMsg/SendMsg
  std::int64_t offset = -1;   // Read/Write: -1 = the file position
  void* aux = nullptr;        // Accept: the socklen_t* of the peer address
  const char* what = "io";    // for the deadlock report
  // The caller reports every close of fd (and every dup2 over it) through fd_replaced() or
  // close_waiting() (internal/io.hpp): net's sockets, the patch's hooks. An engine may then
  // keep state about fd from one call to the next (epoll: its registration).
  bool closes_seen = false;
  // The caller reads fd's bytes as the kernel queued them, with no upper layer between
  // (kernel TLS could stop a read at a record with more queued) and no SO_RCVLOWAT above 1
  // (arrivals below it raise no event): on a TCP socket a short read then means its
  // receive queue was empty, and an engine may skip trying the next read until something
  // arrives (epoll). net's TCP streams say so unless a mark was set through set_option (on
  // the stream or its listener) or found on a descriptor they adopted; the patch says so for
  // stream sockets while the program has set neither TCP_ULP nor SO_RCVLOWAT on any socket.
  bool plain_reads = false;
  // The caller has just tried this very operation without blocking and it answered EAGAIN,
  // with no switch point since (the patch's hooks try before they call perform): an engine
  // that would try first need not (epoll: the park follows with no harvest between).
  bool just_tried = false;
  IoRequest() : buf(nullptr) {}
};

// What an I/O ends with: the result (bytes, revents, or -errno) and why the wait ended.
// Notified: res is the operation's own answer. Deadline / Scoped: res is -ETIMEDOUT.
// Killed, Deadlock, Interrupted: res is negative (the operation did not complete).
struct IoOutcome {
  long res = 0;
  Woke why = Woke::Notified;
};

class Reactor {
 public:
  virtual ~Reactor() = default;
  virtual const char* name() const noexcept = 0;
  virtual std::string describe() const = 0;  // engine and the features in use

  // The backend's half of detail::perform (io.cpp), the only caller: start req for the
  // running fiber f, park it through detail::wait (which also applies an enclosing
  // Timeout), and return only once the kernel is done with every buffer req refers to
  // (invariant 1). d is the call's own deadline. The engine's own quirks (retries the
  // kernel asks for) are handled here; -ECANCELED with Notified means cancel_fd ended it.
  virtual IoOutcome submit_and_park(Fiber* f, const IoRequest& req, Deadline d) = 0;
  // True if submit_and_park tries the operation without waiting at no system call of its
  // own (io_uring: the kernel issues it inline in the batched submit, and arms a poll only
  // if it would block), so a caller that expects to wait saves a call by not trying first.
  // epoll's first try is a system call like the caller's: false.
  virtual bool tries_inline() const noexcept { return false; }
  // True if req, a read with plain_reads, would find nothing queued now, and submit_and_park
  // will therefore park it without trying unless its deadline has passed (epoll: no event
  // since a short read emptied the queue): a caller that tries before it calls perform saves
  // a call by not trying. Only a hint, as the caller's attempt would answer the same; false
  // where the engine cannot say.
  virtual bool knows_nothing_queued(const IoRequest& req) const noexcept { (void)req; return false; }

  // Flush queued work and collect completions without blocking; wakes fibers.
  virtual void poll() = 0;
  // Send queued work to the kernel, collecting nothing: what completes stays for the next
  // poll() or wait(), so no wake-up is taken without the loop looking at it.
  virtual void flush() {}
  // Block until a completion, a notify() or the deadline; then as poll().
  virtual void wait(Deadline d) = 0;
  // Wake wait() from any thread. Coalesced: a burst costs one kernel write.
  virtual void notify() noexcept = 0;
  // From this reactor's own thread: wake `target`'s wait() (another scheduler's) with a
  // message sent at once through this reactor (io_uring's IORING_OP_MSG_RING, in one kernel
  // entry with whatever else was queued). False if this engine cannot reach `target` so;
  // then call target.notify().
  virtual bool ring(Reactor& target) noexcept {
    (void)target;
    return false;
  }

  // Make every operation of this scheduler's fibers waiting on fd finish with -ECANCELED
  // (the fd is being closed under them). Call it before close(fd): io_uring finds the
  // operations by the open file. Only through close_waiting() (detail/io.hpp), which
  // first bumps fd's close generation so that the waiters report -EBADF.
  virtual void cancel_fd(int fd) = 0;
  // The same for a descriptor another thread is closing: `dup` is a duplicate of `fd` (the
  // number being closed) that keeps the open file alive until this returns.
  virtual void cancel_file(int dup, int fd) = 0;
  // fd's number is about to be closed or to name another file, and none of this
  // scheduler's fibers waits on it (or cancel_fd woke them): forget what is kept about it.
  // Only through fd_replaced()/fds_replaced()/close_waiting() (internal/io.hpp).
  virtual void forget_fd(int fd) noexcept { (void)fd; }
  virtual void forget_fds(unsigned first, unsigned last) noexcept {
    (void)first;
    (void)last;
  }

  // Operations whose completion is still owed to a parked fiber.
  virtual std::size_t in_flight() const noexcept = 0;
};

// Backends. create_* returns null and says why in `why` if the kernel refuses.
std::unique_ptr<Reactor> create_uring_reactor(Scheduler& s, std::string& why);
std::unique_ptr<Reactor> create_epoll_reactor(Scheduler& s, std::string& why);

// The plain-thread version of perform(): the ordinary blocking call, bounded by d.
long perform_blocking(const IoRequest& req, Deadline d);
// One non-blocking attempt (MSG_DONTWAIT / RWF_NOWAIT); -EAGAIN if it would block.
// -EOPNOTSUPP if the fd cannot be tried without blocking (then wait for readiness first).
long attempt_nonblocking(const IoRequest& req);
// The plain syscall for req (it may block).
long do_syscall(const IoRequest& req);
// The poll(2) events req waits for.
short poll_events(const IoRequest& req) noexcept;

}  // namespace ringlet::detail
