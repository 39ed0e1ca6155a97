// The io_uring engine. Submissions queue without a syscall and are flushed once per loop
// iteration together with reaping (io_uring_submit_and_get_events) or with the idle wait
// (io_uring_submit_and_wait_timeout). A fiber has at most one operation in flight: its
// user_data is the Fiber, its result goes to the fiber's state (FiberState::io_res, in the
// line the wake reads anyway); a killed fiber cancels and waits for the final completion.
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <string>

#include "internal/fiber_wait.hpp"
#include "internal/hot.hpp"
#include "internal/io.hpp"
#include "internal/reactor.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

namespace {

constexpr std::uint64_t kIgnore = 0;  // completions nobody waits for: link timeouts, cancels
constexpr std::uint64_t kWake = 1;    // the eventfd read that notify() completes
constexpr std::uint64_t kMsgWake = 2; // another core's ring() arriving here
// A ring() that failed comes back with the target reactor's address | kMsgFailed (reactors
// and Fibers are 8-aligned); its CQE is skipped when it succeeds.
constexpr std::uint64_t kMsgFailed = 3;

// IORING_OP_MSG_RING reaches a SINGLE_ISSUER|DEFER_TASKRUN ring through its own task from
// Linux 6.3 on; before that, eventfd. RINGLET_MSG_RING=0 forces eventfd (for comparison).
bool msg_ring_usable() {
  if (const char* v = std::getenv("RINGLET_MSG_RING"); v && std::strcmp(v, "0") == 0) return false;
  utsname u{};
  if (uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 3);
}

__kernel_timespec to_timespec(Clock::duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return {ns / 1'000'000'000, ns % 1'000'000'000};
}

class UringReactor final : public Reactor {
 public:
  explicit UringReactor(Scheduler& s) : sched_(s) {}
  ~UringReactor() override {
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (wake_fd_ >= 0) sys::close(wake_fd_);
  }

  bool init(std::string& why) {
    // Strongest setup first; older kernels refuse unknown flags with EINVAL.
    const unsigned variants[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,  // 6.1
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,    // 5.19
        0,
    };
    int r = -EINVAL;
    for (unsigned flags : variants) {
      io_uring_params p{};
      p.flags = flags | IORING_SETUP_CQSIZE;
      p.cq_entries = 4096;
      r = io_uring_queue_init_params(256, &ring_, &p);
      if (r == 0) {
        setup_flags_ = flags;
        features_ = p.features;
        break;
      }
      if (r != -EINVAL) break;
    }
    if (r != 0) {
      why = std::string("cannot be set up: ") + std::strerror(-r) +
            (r == -EPERM ? " (kernel.io_uring_disabled or a seccomp profile)" : "");
      return false;
    }
    ring_ok_ = true;
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (!probe) {
      why = "cannot be probed for its operations";
      return false;
    }
    const std::pair<int, const char*> needed[] = {
        {IORING_OP_READ, "READ"},           {IORING_OP_WRITE, "WRITE"},
        {IORING_OP_READV, "READV"},         {IORING_OP_WRITEV, "WRITEV"},
        {IORING_OP_RECV, "RECV"},           {IORING_OP_SEND, "SEND"},
        {IORING_OP_RECVMSG, "RECVMSG"},     {IORING_OP_SENDMSG, "SENDMSG"},
        {IORING_OP_POLL_ADD, "POLL_ADD"},   {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
        {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"}, {IORING_OP_ACCEPT, "ACCEPT"},
    };
    for (auto [op, name] : needed) {
      if (!io_uring_opcode_supported(probe, op)) {
        why = std::string("lacks IORING_OP_") + name;
        io_uring_free_probe(probe);
        return false;
      }
    }
    msg_ring_ = io_uring_opcode_supported(probe, IORING_OP_MSG_RING) && msg_ring_usable();
    io_uring_free_probe(probe);
    if (!(features_ & IORING_FEAT_EXT_ARG)) {
      why = "lacks IORING_FEAT_EXT_ARG (Linux 5.11)";
      return false;
    }
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      why = std::string("eventfd: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  const char* name() const noexcept override { return "io_uring"; }
  bool tries_inline() const noexcept override { return true; }
  std::string describe() const override {
    std::string s = "io_uring";
    if (setup_flags_ & IORING_SETUP_DEFER_TASKRUN) s += " (SINGLE_ISSUER|DEFER_TASKRUN)";
    else if (setup_flags_ & IORING_SETUP_COOP_TASKRUN) s += " (COOP_TASKRUN|TASKRUN_FLAG)";
    else s += " (plain)";
    if (msg_ring_) s += ", MSG_RING wake-ups";
    return s;
  }

  // The io_uring half of detail::perform, with the kernel's quirks:
  // - An O_NONBLOCK file that is not ready may come back with -EAGAIN: before Linux 5.7
  //   (IORING_FEAT_FAST_POLL) always, and until 6.3 when a poll wake-up found nothing to
  //   transfer (liburing issue #364; 6.3 retries such spurious wake-ups itself). Wait for
  //   readiness with a poll and submit again.
  // - A poll (or a read waiting in one) can end with -ECANCELED that nobody asked for: the
  //   kernel cancels a task's requests when threads of the process exit (seen on 6.x with
  //   a listening socket while other threads came and went). If close_waiting() did not
  //   run on the fd meanwhile, nothing happened to it: submit again.
  RINGLET_HOT IoOutcome submit_and_park(Fiber* f, const IoRequest& req, Deadline d) override {
    if (!d.is_never() && d.passed()) return {-ETIMEDOUT, Woke::Deadline};
    const std::uint32_t closes = close_generation(req.fd);
    const IoOutcome r = submit_and_wait(f, req, d);
    if (r.why != Woke::Notified || (r.res != -ECANCELED && r.res != -EAGAIN)) [[likely]]
      return r;
    return retry(f, req, d, closes, r);
  }

  RINGLET_HOT void poll() override {
    const bool flush = io_uring_sq_ready(&ring_) > 0;
    const bool events = (in_flight_ + aux_) > 0 &&
                        ((setup_flags_ & IORING_SETUP_DEFER_TASKRUN) ||
                         (IO_URING_READ_ONCE(*ring_.sq.kflags) &
                          (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)));
    if (flush || events) io_uring_submit_and_get_events(&ring_);
    reap();
  }

  void flush() override {
    // Without IORING_ENTER_GETEVENTS: a DEFER_TASKRUN ring runs no completion work here.
    if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
  }

  RINGLET_HOT void wait(Deadline d) override {
    if (!wake_armed_) {
      reserve(1);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
      io_uring_sqe_set_data64(sqe, kWake);
      wake_armed_ = true;
    }
    io_uring_cqe* cqe = nullptr;
    if (d.is_never()) {
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    } else {
      auto left = d.remaining();
      __kernel_timespec ts = to_timespec(left);
      if (left > Clock::duration::zero())
        io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      else
        io_uring_submit_and_get_events(&ring_);
    }
    reap();
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    ssize_t ignored = sys::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  bool ring(Reactor& target) noexcept override {
    if (!msg_ring_ || std::strcmp(target.name(), "io_uring") != 0) return false;
    auto& t = static_cast<UringReactor&>(target);
    if (!t.msg_ring_) return false;
    reserve(1);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_msg_ring(sqe, t.ring_.ring_fd, 0, kMsgWake, 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&t) | kMsgFailed);
    // Sent at once (with whatever else this ring had queued): the target sleeps, and the
    // caller may compute for long before this loop's next submission; left for that, a
    // woken fiber waited for its waker's next switch (tests/test_multicore.cpp).
    io_uring_submit(&ring_);
    return true;
  }

  void cancel_fd(int fd) override {
    if (in_flight_ == 0) return;
    // Submitted at once: the kernel finds the operations by the open file, so this must
    // reach it before the caller closes fd. Cancelling by fd needs Linux 5.19; before that
    // the kernel answers -EINVAL and the operations run on until they complete.
    reserve(1);
    io_uring_sqe* c = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel_fd(c, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(c, kIgnore);
    ++aux_;
    io_uring_submit(&ring_);
  }

  // io_uring matches operations by the open file: the duplicate finds them.
  void cancel_file(int dup, int) override { cancel_fd(dup); }

  std::size_t in_flight() const noexcept override { return in_flight_; }

 private:
  // submit_and_park's quirk handling (above), out of line so that the frame a parked fiber
  // resumes through stays small (each of its lines is a cache miss at 1 000 connections):
  // r is the first outcome of req, submitted when close_generation(req.fd) was `closes`.
  __attribute__((noinline)) IoOutcome retry(Fiber* f, const IoRequest& req, Deadline d,
                                            std::uint32_t closes, IoOutcome r) {
    IoRequest ready;  // the poll of an -EAGAIN hand-back
    const IoRequest* q = &req;
    for (;;) {
      if (r.why != Woke::Notified) return r;
      if (r.res == -ECANCELED) {
        if (close_generation(q->fd) != closes) return r;  // closed under the wait
        // else ended by the kernel itself: submit q again
      } else if (q == &ready) {  // ready now (or the poll failed): the operation again
        if (r.res < 0) return r;
        q = &req;
      } else {
        if (r.res != -EAGAIN || req.op == IoRequest::Op::Poll) return r;
        ready = poll_request(req.fd, poll_events(req), req.what);
        q = &ready;
      }
      if (!d.is_never() && d.passed()) return {-ETIMEDOUT, Woke::Deadline};
      closes = close_generation(q->fd);
      r = submit_and_wait(f, *q, d);
    }
  }

  // One submission of q (f's, the running fiber's) with a linked timeout at d, parked through
  // the one wait's fiber half (fiber_wait) until its completion; a wait ended otherwise
  // (kill, an enclosing Timeout, a signal) cancels and stays parked, uninterruptibly, until
  // the kernel is done with q's buffers (cancel_and_wait). reap() finds f by the user_data,
  // stores the result in its state and wakes it with the token of its current park
  // (FiberState::park_token).
  __attribute__((always_inline)) IoOutcome submit_and_wait(Fiber* f, const IoRequest& q,
                                                           Deadline d) {
    FiberState& fs = st(f);
    const std::uint64_t token = fs.epoch.load(std::memory_order_relaxed);  // as Waiter::arm
    const bool timed = !d.is_never();
    reserve(timed ? 2 : 1);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    prep(sqe, q);
    io_uring_sqe_set_data(sqe, f);
    fs.io_done = false;
    ++in_flight_;
    __kernel_timespec ts{};  // read by the kernel at submission, while we are parked here
    if (timed) {
      sqe->flags |= IOSQE_IO_LINK;
      ts = to_timespec(d.time().time_since_epoch());
      io_uring_sqe* t = io_uring_get_sqe(&ring_);
      io_uring_prep_link_timeout(t, &ts, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, kIgnore);
      ++aux_;
    }
    WaitSpec spec;
    spec.what = q.what;
    spec.fd = q.fd;
    spec.kind = WaitKind::Io;
    spec.shown_deadline = d;
    const Woke why = fiber_wait(f, token, spec);
    if (!fs.io_done) [[unlikely]]
      cancel_and_wait(f);
    const long res = fs.io_res;
    if (why == Woke::Notified) [[likely]] {
      if (res == -ECANCELED && timed && d.passed())
        return {-ETIMEDOUT, Woke::Deadline};  // the linked timeout cancelled it
      return {res, why};
    }
    if ((why == Woke::Deadline || why == Woke::Scoped) && res < 0) return {-ETIMEDOUT, why};
    return {res, why};
  }

  // f's operation is still in flight after its wait ended otherwise: cancel it and wait,
  // uninterruptibly, for its final completion.
  __attribute__((noinline, cold)) void cancel_and_wait(Fiber* f) {
    reserve(1);
    io_uring_sqe* c = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel64(c, reinterpret_cast<std::uint64_t>(f), 0);
    io_uring_sqe_set_data64(c, kIgnore);
    ++aux_;
    WaitSpec cancel;
    cancel.what = "cancellation";
    cancel.kind = WaitKind::Io;
    cancel.interruptible = false;
    while (!st(f).io_done) fiber_wait(f, st(f).epoch.load(std::memory_order_relaxed), cancel);
  }

  // Make room for n consecutive SQEs (a linked pair must not straddle a flush).
  void reserve(unsigned n) {
    while (io_uring_sq_space_left(&ring_) < n) {
      int r = io_uring_submit(&ring_);
      if (r == -EBUSY || r == -EAGAIN) {  // completion queue backed up: make room there
        io_uring_get_events(&ring_);
        reap();
      }
    }
  }

  static void prep(io_uring_sqe* sqe, const IoRequest& q) {
    using Op = IoRequest::Op;
    const auto off = static_cast<std::uint64_t>(q.offset);  // -1: the file position
    switch (q.op) {
      case Op::Read: io_uring_prep_read(sqe, q.fd, q.buf, q.len, off); break;
      case Op::Write: io_uring_prep_write(sqe, q.fd, q.cbuf, q.len, off); break;
      case Op::Readv: io_uring_prep_readv(sqe, q.fd, q.iov, q.len, off); break;
      case Op::Writev: io_uring_prep_writev(sqe, q.fd, q.iov, q.len, off); break;
      case Op::Recv: io_uring_prep_recv(sqe, q.fd, q.buf, q.len, q.flags); break;
      case Op::Send: io_uring_prep_send(sqe, q.fd, q.cbuf, q.len, q.flags); break;
      case Op::RecvMsg: io_uring_prep_recvmsg(sqe, q.fd, q.msg, static_cast<unsigned>(q.flags)); break;
      case Op::SendMsg: io_uring_prep_sendmsg(sqe, q.fd, q.msg, static_cast<unsigned>(q.flags)); break;
      case Op::Poll: io_uring_prep_poll_add(sqe, q.fd, q.len); break;
      case Op::Accept:
        io_uring_prep_accept(sqe, q.fd, static_cast<sockaddr*>(q.buf),
                             static_cast<socklen_t*>(q.aux), q.flags);
        break;
    }
  }

  RINGLET_HOT void reap() {
    unsigned head;
    unsigned n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      const std::uint64_t ud = cqe->user_data;
      if (ud == kIgnore) {
        --aux_;
      } else if (ud == kWake) {
        wake_armed_ = false;
      } else if (ud == kMsgWake) {
        // another core rang: the loop drains its remote queue next
      } else if (ud == LIBURING_UDATA_TIMEOUT) {
      } else if ((ud & 7) == kMsgFailed) {
        reinterpret_cast<UringReactor*>(ud & ~std::uint64_t{7})->notify();  // ring by eventfd
      } else {
        auto* f = reinterpret_cast<Fiber*>(ud);
        FiberState& fs = st(f);
        fs.io_res = cqe->res;
        fs.io_done = true;
        --in_flight_;
        Scheduler::wake(f, fs.park_token, WakeReason::Notified);
      }
    }
    io_uring_cq_advance(&ring_, n);
  }

  Scheduler& sched_;
  io_uring ring_{};
  bool ring_ok_ = false;
  unsigned setup_flags_ = 0;
  unsigned features_ = 0;
  int wake_fd_ = -1;
  std::uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  bool msg_ring_ = false;  // ring() may use IORING_OP_MSG_RING
  std::size_t in_flight_ = 0;
  std::size_t aux_ = 0;
};

}  // namespace

std::unique_ptr<Reactor> create_uring_reactor(Scheduler& s, std::string& why) {
  auto r = std::make_unique<UringReactor>(s);
  if (!r->init(why)) return nullptr;
  return r;
}

}  // namespace ringlet::detail
