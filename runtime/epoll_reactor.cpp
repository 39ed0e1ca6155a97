// The epoll engine, for where io_uring is refused (seccomp, kernel.io_uring_disabled, old
// kernels). An operation is first tried without blocking (MSG_DONTWAIT / RWF_NOWAIT); on
// EAGAIN the fiber parks on the fd's readiness, level-triggered, and tries again. Nothing
// of the fiber's is handed to the kernel, so a killed or timed-out wait simply unlinks.
#include <poll.h>
#include <sys/epoll.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "internal/reactor.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

namespace {

struct FdWait {
  Waiter* waiter = nullptr;  // shared by a fiber's read and write waits: the first wins
  FdWait* next = nullptr;
  FdWait* prev = nullptr;
  bool linked = false;
  bool cancelled = false;  // cancel_fd(): the fd is being closed under the waiter
};

struct FdSlot {
  FdWait* in = nullptr;   // waiting to read (POLLIN/POLLPRI)
  FdWait* out = nullptr;  // waiting to write
  std::uint32_t registered = 0;
};

bool uses_rwf_nowait(IoRequest::Op op) noexcept {
  using Op = IoRequest::Op;
  return op == Op::Read || op == Op::Write || op == Op::Readv || op == Op::Writev;
}

void link(FdWait*& head, FdWait* w) {
  w->prev = nullptr;
  w->next = head;
  if (head) head->prev = w;
  head = w;
  w->linked = true;
}

void unlink(FdWait*& head, FdWait* w) {
  if (!w->linked) return;
  if (w->prev) w->prev->next = w->next;
  else head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->linked = false;
}

class EpollReactor final : public Reactor {
 public:
  explicit EpollReactor(Scheduler& s) : sched_(s) {}
  ~EpollReactor() override {
    if (epfd_ >= 0) sys::close(epfd_);
    if (wake_fd_ >= 0) sys::close(wake_fd_);
  }

  bool init(std::string& why) {
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epfd_ < 0 || wake_fd_ < 0) {
      why = std::string("epoll/eventfd: ") + std::strerror(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      why = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  const char* name() const noexcept override { return "epoll"; }
  std::string describe() const override { return "epoll (readiness, level-triggered)"; }

  // The epoll half of detail::perform: try, and on EAGAIN wait for readiness and try
  // again. Nothing is handed to the kernel, so no -EAGAIN comes back and a wait that ends
  // otherwise simply unlinks; -ECANCELED is close_waiting()'s cancel_fd, nothing else.
  IoOutcome submit_and_park(Fiber* f, const IoRequest& req, Deadline d) override {
    (void)f;
    bool readiness_first = false;
    for (;;) {
      if (!readiness_first) {
        long r = attempt_nonblocking(req);
        // RWF_NOWAIT refused (a blocking tty, say): wait for readiness, then call. Only for
        // the read/write family: from a socket call EOPNOTSUPP is the call's real answer.
        if (r == -EOPNOTSUPP && uses_rwf_nowait(req.op)) readiness_first = true;
        else if (r != -EAGAIN) return {r, Woke::Notified};
      }
      // One wait node per direction, sharing the waiter: the first readiness wins.
      const short ev = poll_events(req);
      const bool want_in = (ev & (POLLIN | POLLPRI)) != 0 || (ev & POLLOUT) == 0;
      const bool want_out = (ev & POLLOUT) != 0;
      Waiter w;
      w.arm();
      FdWait in_wait{&w}, out_wait{&w};
      int reg = want_in ? add(req.fd, false, &in_wait) : 0;
      if (reg == 0 && want_out) {
        reg = add(req.fd, true, &out_wait);
        if (reg < 0 && want_in) remove(req.fd, false, &in_wait);
      }
      if (reg == -EPERM) return {do_syscall(req), Woke::Notified};  // regular file
      if (reg < 0) return {reg, Woke::Notified};
      ++waiting_;
      WaitSpec spec;
      spec.what = req.what;
      spec.fd = req.fd;
      spec.kind = WaitKind::Io;
      spec.deadline = d;
      const Woke why = detail::wait(w, spec);
      --waiting_;
      if (want_in) remove(req.fd, false, &in_wait);
      if (want_out) remove(req.fd, true, &out_wait);
      if (in_wait.cancelled || out_wait.cancelled) return {-ECANCELED, Woke::Notified};
      if (why == Woke::Deadline || why == Woke::Scoped) return {-ETIMEDOUT, why};
      if (why != Woke::Notified) return {-ECANCELED, why};
      if (readiness_first) {
        long r = req.op == IoRequest::Op::Poll ? attempt_nonblocking(req) : do_syscall(req);
        if (r != -EAGAIN) return {r, Woke::Notified};
      }
    }
  }

  void poll() override {
    if (waiting_ > 0) dispatch(0);
  }

  void wait(Deadline d) override {
    if (d.is_never()) {
      dispatch(-1);
      return;
    }
    const auto left = d.remaining();
    dispatch(left <= Clock::duration::zero()
                 ? 0
                 : std::chrono::duration_cast<std::chrono::nanoseconds>(left).count());
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    ssize_t ignored = sys::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  void cancel_fd(int fd) override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    for (FdWait* w = s.in; w; w = w->next) w->cancelled = true;
    for (FdWait* w = s.out; w; w = w->next) w->cancelled = true;
    wake_all(s.in);
    wake_all(s.out);
    update(fd, s);
  }

  // Waiters are filed by number: cancel them unless the number has been reused for another
  // open file meanwhile (whose waiters they would then be; ours then wait on, a window of a
  // few microseconds that io_uring does not have).
  void cancel_file(int dup, int fd) override {
    const pid_t me = getpid();
    const long same = ::syscall(SYS_kcmp, me, me, KCMP_FILE, fd, dup);
    if (same == 0 || (same < 0 && errno == EBADF)) cancel_fd(fd);
  }

  std::size_t in_flight() const noexcept override { return waiting_; }

 private:
  static std::uint32_t mask(const FdSlot& s) {
    return (s.in ? EPOLLIN | EPOLLPRI | EPOLLRDHUP : 0u) | (s.out ? EPOLLOUT : 0u);
  }

  int update(int fd, FdSlot& s) {
    const std::uint32_t want = mask(s);
    if (want == s.registered) return 0;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    int r;
    if (want == 0) {
      r = ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
      if (r != 0 && (errno == ENOENT || errno == EBADF)) r = 0;  // closed meanwhile
    } else if (s.registered == 0) {
      r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      if (r != 0 && errno == EEXIST) r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    } else {
      r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
      // The fd was closed (and maybe reopened) since: epoll forgot it.
      if (r != 0 && errno == ENOENT) r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    }
    if (r != 0) return -errno;
    s.registered = want;
    return 0;
  }

  int add(int fd, bool out, FdWait* w) {
    if (fd < 0) return -EBADF;
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 64);
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    link(out ? s.out : s.in, w);
    int r = update(fd, s);
    if (r < 0) {
      unlink(out ? s.out : s.in, w);
      s.registered = 0;
    }
    return r;
  }

  void remove(int fd, bool out, FdWait* w) {
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    unlink(out ? s.out : s.in, w);
    update(fd, s);
  }

  void dispatch(long long timeout_ns) {
    epoll_event evs[128];
    int n;
    if (timeout_ns < 0) {
      n = sys::epoll_wait(epfd_, evs, 128, -1);
    } else {
      timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000), static_cast<long>(timeout_ns % 1'000'000'000)};
      n = static_cast<int>(::syscall(SYS_epoll_pwait2, epfd_, evs, 128, &ts, nullptr, 0));
      if (n < 0 && errno == ENOSYS)  // before Linux 5.11: milliseconds, rounded up
        n = sys::epoll_wait(epfd_, evs, 128, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      const std::uint32_t e = evs[i].events;
      if (fd == wake_fd_) {
        std::uint64_t v;
        ssize_t ignored = sys::read(wake_fd_, &v, sizeof v);
        (void)ignored;
        continue;
      }
      if (static_cast<std::size_t>(fd) >= fds_.size()) continue;
      FdSlot& s = fds_[static_cast<std::size_t>(fd)];
      if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) wake_all(s.in);
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) wake_all(s.out);
      update(fd, s);
    }
  }

  static void wake_all(FdWait*& head) {
    while (FdWait* w = head) {
      unlink(head, w);
      w->waiter->claim();
    }
  }

  Scheduler& sched_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  std::vector<FdSlot> fds_;
  std::size_t waiting_ = 0;
};

}  // namespace

std::unique_ptr<Reactor> create_epoll_reactor(Scheduler& s, std::string& why) {
  auto r = std::make_unique<EpollReactor>(s);
  if (!r->init(why)) return nullptr;
  return r;
}

}  // namespace ringlet::detail
