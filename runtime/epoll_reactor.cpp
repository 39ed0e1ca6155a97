// The epoll engine, for where io_uring is refused (seccomp, kernel.io_uring_disabled, old
// kernels). An operation is first tried without blocking (MSG_DONTWAIT / RWF_NOWAIT); on
// EAGAIN the fiber parks on the fd's readiness and tries again. Nothing of the fiber's is
// handed to the kernel, so a killed or timed-out wait simply unlinks.
//
// The interest set is kept, as a hand-written epoll server keeps it: a descriptor is added
// (edge-triggered) at its first park and stays, its events only ever growing (EPOLLIN, then
// EPOLLOUT once something waits to write); fd_replaced()/close_waiting() (close.cpp) remove
// it before the number is closed or reused. A park on a registration the engine can trust
// costs no epoll_ctl. The attempt that answered EAGAIN and the park follow each other with
// no epoll_wait between, so any edge after the attempt is reported to the parked waiter.
//
// A read that would find the receive queue empty is not tried, as a hand-written epoll
// server reads only on an event. After a short read (fewer bytes than asked) from a TCP
// socket, the next read on the number parks at once if no read-side event has been
// harvested for it since: the queue was empty at that read; whatever arrived after it
// re-queued the edge-triggered registration, and the harvest that finds it wakes the parked
// reader (an arrival before the read was read by it: its harvest only makes the reader try).
// Only where the caller reads the bytes as queued (IoRequest::plain_reads: net's streams
// with no low-water mark, the patch's stream sockets while no socket has TCP_ULP or
// SO_RCVLOWAT; kernel TLS stops at a record with more queued, a low-water mark withholds
// events), only TCP (SO_PROTOCOL, asked once per registration: a datagram, a Unix socket
// passing credentials or descriptors, a pipe or a terminal may read short with more
// queued), never once a hang-up,
// an error or urgent data was reported (a short read stops at those), never with flags
// beyond MSG_DONTWAIT / MSG_NOSIGNAL / MSG_WAITALL, never past a deadline. Nor is an
// operation tried that the caller has just tried and found EAGAIN (IoRequest::just_tried:
// the patch's hooks try first), for the same reason as the park after the engine's own
// attempt; and such a caller may ask first whether its attempt would find nothing
// (knows_nothing_queued).
//
// Trust: epoll keys a registration on (open file, number) and drops it silently when the
// file's last reference goes, so "registered" can be stale after a close the engine did not
// see. A registration is trusted only for a request whose caller reports every close of its
// descriptors (IoRequest::closes_seen: net's sockets, the patch's hooks), while the number's
// close generation is the one the registration was made under. Anything else (a raw
// io::read on a descriptor its owner may close behind us, readiness-first waits, a wake-up
// that found nothing) re-checks with EPOLL_CTL_MOD, which also re-arms: ENOENT there means
// "another file now": it is added afresh. Events carry a tag beside the number, so an old
// registration kept alive by a dup (or a child's copy) is told from the current one and
// ignored. A trusted wait that sees nothing for kVerifyAfter is re-checked all the same
// (closes nobody reported: a raw syscall, a library's own): such a wait is late by one to
// two periods, never lost.
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "internal/fiber_wait.hpp"
#include "internal/hot.hpp"
#include "internal/io.hpp"
#include "internal/reactor.hpp"
#include "internal/scheduler.hpp"
#include "internal/sys.hpp"

namespace ringlet::detail {

namespace {

// A trusted park that has seen no event for between one and two of these is re-checked.
constexpr std::uint64_t kVerifyAfterNs = 1'000'000'000;

// A parked fiber's wait on one direction of a number, on its stack. A fiber waiting for both
// directions files two, with the same token: the first wake wins (Scheduler::wake). No
// initializers: submit_and_park fills in the ones it links, and leaves the other unwritten.
// A waker (wake_all) unlinks the record before it wakes through it, and a wake that wins
// says so in the fiber's io_res (1 an event's, -ECANCELED a close's; the park set 0): so a
// wait on one direction that ends that way does not read its record back at the resume. Any
// other wake (a timer, a kill, a Waiter's claim) leaves 0, and the record is looked at.
struct FdWait {
  Fiber* fiber;
  std::uint64_t token;
  FdWait* next;
  FdWait* prev;
  bool linked;
  bool cancelled;  // cancel_fd(): the fd is being closed under the waiter
};

struct FdSlot {
  FdWait* in = nullptr;   // waiting to read (POLLIN/POLLPRI)
  FdWait* out = nullptr;  // waiting to write
  std::uint32_t registered = 0;  // events of our registration for this number (0: none)
  std::uint32_t tag = 0;         // in each event's data beside the number
  std::uint32_t gen = 0;         // close_generation(fd) when last added or checked
  std::uint32_t epoch = 0;       // g_range_closes then
  // Trusted waits parked on this number and not re-checked yet, by the parity of the
  // re-check round they parked in (see recheck_due); listed in tp_fds_ while any may be.
  std::uint32_t tp_count[2] = {0, 0};
  bool tp_listed = false;
  std::uint32_t in_events = 0;   // read-side events harvested for this registration
  std::uint32_t drained_at = 0;  // in_events when a short read emptied the receive queue
  bool trusted = false;  // last added or checked by a closes_seen request
  bool suspect = false;  // a wake-up found nothing to do: check at the next park
  bool drained = false;  // a short read emptied the queue, at drained_at
  bool no_drain = false; // a hang-up, error or urgent data was reported: always try
  std::uint8_t tcp = 0;  // 0 not asked yet, 1 a TCP socket, 2 anything else
};

constexpr std::uint32_t kIn = EPOLLIN | EPOLLPRI | EPOLLRDHUP;
constexpr std::uint32_t kOut = EPOLLOUT;

// A read whose short answer means the receive queue was empty (on a TCP socket).
bool drains_queue(const IoRequest& req) noexcept {
  using Op = IoRequest::Op;
  if (!req.plain_reads) return false;
  constexpr int kPlain = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_WAITALL;
  return req.op == Op::Recv && (req.flags & ~kPlain) == 0;
}

bool uses_rwf_nowait(IoRequest::Op op) noexcept {
  using Op = IoRequest::Op;
  return op == Op::Read || op == Op::Write || op == Op::Readv || op == Op::Writev;
}

template <class T>
void link(T*& head, T* w) {
  w->prev = nullptr;
  w->next = head;
  if (head) head->prev = w;
  head = w;
  w->linked = true;
}

template <class T>
void unlink(T*& head, T* w) {
  if (!w->linked) return;
  if (w->prev) w->prev->next = w->next;
  else head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->linked = false;
}

std::uint64_t coarse_now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
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
    ev.data.u64 = kWakeData;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      why = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  const char* name() const noexcept override { return "epoll"; }
  bool knows_nothing_queued(const IoRequest& req) const noexcept override {
    return drains_queue(req) && still_drained(req.fd);
  }
  std::string describe() const override { return "epoll (readiness, edge-triggered, interest set kept)"; }

  // The epoll half of detail::perform: try, and on EAGAIN wait for readiness and try
  // again. Nothing is handed to the kernel, so no -EAGAIN comes back and a wait that ends
  // otherwise simply unlinks; -ECANCELED is close_waiting()'s cancel_fd, nothing else.
  RINGLET_HOT IoOutcome submit_and_park(Fiber* f, const IoRequest& req, Deadline d) override {
    bool readiness_first = false;
    bool woke = false;  // the last park ended with an event
    const bool drains = drains_queue(req);
    // Nothing arrived since a short read emptied the queue, or the caller's own attempt
    // found nothing just now: park without trying.
    bool skip = req.just_tried || (drains && still_drained(req.fd) && (d.is_never() || !d.passed()));
    for (;;) {
      if (skip) {
        skip = false;
      } else if (!readiness_first) {
        long r = attempt_nonblocking(req);
        if (drains && r >= 0) note_read(req.fd, static_cast<std::uint64_t>(r) < req.len);
        // RWF_NOWAIT refused (a blocking tty, say): wait for readiness, then call. Only for
        // the read/write family: from a socket call EOPNOTSUPP is the call's real answer.
        if (r == -EOPNOTSUPP && uses_rwf_nowait(req.op)) readiness_first = true;
        else if (r != -EAGAIN) return {r, Woke::Notified};
        // Woken, and still nothing: maybe an old registration's event (a file closed
        // unseen, kept alive by a dup); or another waiter took it. Check at this park.
        else if (woke && static_cast<std::size_t>(req.fd) < fds_.size()) fds_[static_cast<std::size_t>(req.fd)].suspect = true;
      }
      // One wait node per direction, sharing the waiter: the first readiness wins.
      const short ev = poll_events(req);
      const bool want_in = (ev & (POLLIN | POLLPRI)) != 0 || (ev & POLLOUT) == 0;
      const bool want_out = (ev & POLLOUT) != 0;
      if (req.fd < 0) return {-EBADF, Woke::Notified};
      // Readiness-first waits never trust: the check (a MOD) re-arms, reporting what is
      // ready already, which no attempt has looked at.
      bool trusted = false;
      const int reg = arm(req.fd, (want_in ? kIn : 0u) | (want_out ? kOut : 0u),
                          req.closes_seen && !readiness_first, trusted);
      if (reg == -EPERM) return {do_syscall(req), Woke::Notified};  // regular file
      if (reg < 0) return {reg, Woke::Notified};
      // Only what the wait needs is written: each line of this frame is a cache miss at
      // the resume when many fibers take turns.
      const std::uint64_t token = st(f).epoch.load(std::memory_order_relaxed);
      FdWait in_wait, out_wait;
      FdSlot& s = fds_[static_cast<std::size_t>(req.fd)];
      if (want_in) {
        in_wait.fiber = f;
        in_wait.token = token;
        in_wait.cancelled = false;
        link(s.in, &in_wait);
      }
      if (want_out) {
        out_wait.fiber = f;
        out_wait.token = token;
        out_wait.cancelled = false;
        link(s.out, &out_wait);
      }
      const std::uint32_t round = round_;
      if (trusted) park_trusted(s, req.fd, round);
      ++waiting_;
      st(f).io_res = 0;  // wake_all's word (see FdWait)
      WaitSpec spec;
      spec.what = req.what;
      spec.fd = req.fd;
      spec.kind = WaitKind::Io;
      spec.deadline = d;
      // fiber_wait inline, not wait(): one frame fewer on the parked stack to resume
      // through (each line of it is a cache miss when many fibers take turns).
      const Woke why = fiber_wait(f, token, spec);
      --waiting_;
      // fds_ may have grown meanwhile: find the slot again.
      if (trusted) unpark_trusted(fds_[static_cast<std::size_t>(req.fd)], round);
      const std::int32_t by_engine = st(f).io_res;
      if (why == Woke::Notified && by_engine != 0 && want_in != want_out) {
        // Woken through its one record, which wake_all unlinked: its frame stays unread.
        if (by_engine == -ECANCELED) return {-ECANCELED, Woke::Notified};
      } else {
        FdSlot& s2 = fds_[static_cast<std::size_t>(req.fd)];
        if (want_in) unlink(s2.in, &in_wait);
        if (want_out) unlink(s2.out, &out_wait);
        if ((want_in && in_wait.cancelled) || (want_out && out_wait.cancelled)) return {-ECANCELED, Woke::Notified};
      }
      if (why == Woke::Deadline || why == Woke::Scoped) return {-ETIMEDOUT, why};
      if (why != Woke::Notified) return {-ECANCELED, why};
      woke = true;
      if (readiness_first) {
        long r = req.op == IoRequest::Op::Poll ? attempt_nonblocking(req) : do_syscall(req);
        if (r != -EAGAIN) return {r, Woke::Notified};
      }
    }
  }

  RINGLET_HOT void poll() override {
    if (waiting_ == 0) return;
    // A loop that never sleeps still re-checks its long trusted waits, looking at the
    // clock every 64 turns only.
    if (tp_total_ != 0 && (++polls_ & 63) == 0) recheck_due(coarse_now_ns());
    dispatch(0);
  }

  RINGLET_HOT void wait(Deadline d) override {
    long long timeout_ns = -1;
    if (!d.is_never()) {
      const auto left = d.remaining();
      timeout_ns = left <= Clock::duration::zero()
                       ? 0
                       : std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    }
    if (tp_total_ != 0) {
      // Wake up for the next re-check round while trusted waits are parked.
      const std::uint64_t now = coarse_now_ns();
      recheck_due(now);
      if (tp_total_ != 0) {
        const long long until = next_recheck_ns_ > now ? static_cast<long long>(next_recheck_ns_ - now) : 0;
        if (timeout_ns < 0 || until < timeout_ns) timeout_ns = until;
      }
    }
    dispatch(timeout_ns);
  }

  void notify() noexcept override {
    std::uint64_t one = 1;
    ssize_t ignored = sys::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  void cancel_fd(int fd) override {
    if (cancel_waiters(fd)) forget_fd(fd);  // before the close: fd still names the file
  }

  // Waiters are filed by number: cancel them unless the number has been reused for another
  // open file meanwhile (whose waiters they would then be; ours then wait on, a window of a
  // few microseconds that io_uring does not have).
  void cancel_file(int dup, int fd) override {
    const pid_t me = getpid();
    const long same = ::syscall(SYS_kcmp, me, me, KCMP_FILE, fd, dup);
    if (same == 0 || (same < 0 && errno == EBADF)) {
      // Another thread closes it, maybe already: no DEL by number (it may name another
      // file now). Our registration goes with the file; if a dup keeps it, its events
      // carry the old tag and are ignored.
      if (FdSlot* s = cancel_waiters(fd)) drop(*s);
    }
  }

  // fd's number is about to be closed or to name another file (fd_replaced). With waiters
  // parked (cancel_fd has woken those of a close) the registration stays, but their next
  // park checks it.
  void forget_fd(int fd) noexcept override {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return;
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    if (s.registered == 0) return;
    if (s.in || s.out) {
      s.trusted = false;
      return;
    }
    epoll_event ev{};  // pre-2.6.9 kernels want one
    (void)::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);  // ENOENT/EBADF: gone already
    drop(s);
  }

  void forget_fds(unsigned first, unsigned last) noexcept override {
    const std::size_t end = last < fds_.size() ? static_cast<std::size_t>(last) + 1 : fds_.size();
    for (std::size_t fd = first; fd < end; ++fd) forget_fd(static_cast<int>(fd));
  }

  std::size_t in_flight() const noexcept override { return waiting_; }

 private:
  static constexpr std::uint64_t kWakeData = ~std::uint64_t{0};

  // Wake fd's waiters with -ECANCELED (close_waiting): its slot, or null if it has none.
  FdSlot* cancel_waiters(int fd) noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return nullptr;
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    wake_all(s.in, true);
    wake_all(s.out, true);
    return &s;
  }

  static void drop(FdSlot& s) noexcept {
    s.registered = 0;
    s.trusted = false;
    s.suspect = false;
    renew(s);  // whatever an old registration still reports is not ours
  }

  // A new tag: what was known of the registration's file is forgotten.
  static void renew(FdSlot& s) noexcept {
    ++s.tag;
    s.drained = false;
    s.no_drain = false;
    s.tcp = 0;
  }

  // fd's receive queue is known empty: a short read found it so, and no read-side event
  // has been harvested since (see the header).
  bool still_drained(int fd) const noexcept {
    if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) return false;
    const FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    return s.drained && !s.no_drain && s.in_events == s.drained_at && (s.registered & EPOLLIN);
  }

  // A read of fd by drains_queue's kind answered: `short_read` if fewer bytes than asked.
  void note_read(int fd, bool short_read) noexcept {
    if (static_cast<std::size_t>(fd) >= fds_.size()) return;
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    s.drained = false;
    if (!short_read || !(s.registered & EPOLLIN) || s.no_drain) return;
    if (s.tcp == 0) {
      int proto = 0;
      socklen_t len = sizeof proto;
      s.tcp = ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP ? 1 : 2;
    }
    if (s.tcp != 1) return;
    s.drained = true;
    s.drained_at = s.in_events;
  }

  static std::uint64_t data_of(int fd, const FdSlot& s) noexcept {
    return static_cast<std::uint32_t>(fd) | (static_cast<std::uint64_t>(s.tag) << 32);
  }

  // Make sure our registration for fd covers `want`, without a syscall when it can be
  // trusted (`trusted` then says so). 0 or -errno (-EPERM: a regular file).
  int arm(int fd, std::uint32_t want, bool trust_ok, bool& trusted) {
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(static_cast<std::size_t>(fd) + 64);
    FdSlot& s = fds_[static_cast<std::size_t>(fd)];
    const std::uint32_t gen = close_generation(fd);
    const std::uint32_t epoch = g_range_closes.load(std::memory_order_acquire);
    if ((want & ~s.registered) == 0 && trust_ok && s.trusted && !s.suspect && s.gen == gen &&
        s.epoch == epoch) {
      trusted = true;
      return 0;
    }
    const int r = check(fd, s, s.registered | want);
    if (r == 0) {
      s.gen = gen;
      s.epoch = epoch;
      s.trusted = trust_ok;
    }
    return r;
  }

  // Add or re-check (MOD, which re-arms) our registration of fd with `events`. A MOD that
  // finds none (ENOENT: the number names another file now) adds afresh with a new tag.
  int check(int fd, FdSlot& s, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events | EPOLLET;
    int r;
    if (s.registered == 0) {
      renew(s);
      ev.data.u64 = data_of(fd, s);
      r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      // An old registration of this very file (the number closed unseen and given back
      // by a dup2, say): take it over.
      if (r != 0 && errno == EEXIST) r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
    } else {
      ev.data.u64 = data_of(fd, s);
      r = ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
      if (r != 0 && errno == ENOENT) {
        renew(s);
        ev.data.u64 = data_of(fd, s);
        r = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
      }
    }
    if (r != 0) {
      const int e = errno;
      if (s.registered != 0) drop(s);
      return -e;
    }
    s.registered = events;
    s.suspect = false;
    return 0;
  }

  // A trusted wait parks on fd in re-check round `round`. Counted in its slot, not linked
  // into a list: a list through the parked stacks would write a neighbour's cold frame at
  // every park and unpark.
  void park_trusted(FdSlot& s, int fd, std::uint32_t round) {
    ++s.tp_count[round & 1];
    ++tp_total_;
    if (!s.tp_listed) {
      s.tp_listed = true;
      tp_fds_.push_back(fd);
    }
  }

  // The wait parked in `round` ends: uncount it, unless a re-check pass has (see recheck_due).
  void unpark_trusted(FdSlot& s, std::uint32_t round) noexcept {
    if (round_ - round >= 2) return;
    --s.tp_count[round & 1];
    --tp_total_;
  }

  // Re-check the numbers of the trusted waits parked before the last round (so parked for a
  // period or more), once per number; a number that cannot be checked (closed: EBADF) wakes
  // its waiters to find out by trying. Rounds advance only here, so when the pass of round R
  // runs, every wait still counted parked in R-1 or R. Those of R-1 (the parity (R-1)&1) are
  // checked and uncounted; a wait of round r knows it was once round_ >= r + 2.
  void recheck_due(std::uint64_t now) {
    if (next_recheck_ns_ == 0) {  // the first trusted waits since none were left
      next_recheck_ns_ = now + kVerifyAfterNs;
      ++round_;
      return;
    }
    if (now < next_recheck_ns_) return;
    const unsigned due = (round_ - 1) & 1;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < tp_fds_.size(); ++i) {
      const int fd = tp_fds_[i];
      FdSlot& s = fds_[static_cast<std::size_t>(fd)];
      if (s.tp_count[due] != 0) {
        tp_total_ -= s.tp_count[due];
        s.tp_count[due] = 0;
        if (s.registered == 0 || check(fd, s, s.registered) != 0) {
          wake_all(s.in);
          wake_all(s.out);
        }
      }
      if (s.tp_count[due ^ 1] != 0) tp_fds_[kept++] = fd;
      else s.tp_listed = false;
    }
    tp_fds_.resize(kept);
    ++round_;
    next_recheck_ns_ = tp_total_ != 0 ? now + kVerifyAfterNs : 0;
  }

  RINGLET_HOT void dispatch(long long timeout_ns) {
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
      const std::uint64_t data = evs[i].data.u64;
      const std::uint32_t e = evs[i].events;
      if (data == kWakeData) {
        std::uint64_t v;
        ssize_t ignored = sys::read(wake_fd_, &v, sizeof v);
        (void)ignored;
        continue;
      }
      const std::size_t fd = static_cast<std::uint32_t>(data);
      if (fd >= fds_.size()) continue;
      FdSlot& s = fds_[fd];
      if (static_cast<std::uint32_t>(data >> 32) != s.tag) continue;  // an old registration's
      // Nobody waiting: only the count is kept (see the header), the next attempt looks.
      if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) {
        ++s.in_events;
        if (e & (EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) s.no_drain = true;
        wake_all(s.in);
      }
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) wake_all(s.out);
    }
  }

  // Unlinks each record, then wakes through it. `cancel`: a close's (cancel_waiters). The
  // fibers are this engine's own, parked on this thread: their state is written here
  // before the wake makes them ready.
  static void wake_all(FdWait*& head, bool cancel = false) {
    while (FdWait* w = head) {
      ringlet::detail::unlink(head, w);
      if (cancel) w->cancelled = true;  // read back by a wait that another wake ended first
      // The wake below wins exactly when the token is still the fiber's epoch.
      if (st(w->fiber).epoch.load(std::memory_order_relaxed) == w->token) st(w->fiber).io_res = cancel ? -ECANCELED : 1;
      Scheduler::wake(w->fiber, w->token, WakeReason::Notified);
    }
  }

  Scheduler& sched_;
  int epfd_ = -1;
  int wake_fd_ = -1;
  std::vector<FdSlot> fds_;
  std::size_t waiting_ = 0;
  std::size_t tp_total_ = 0;  // trusted waits parked and not re-checked yet
  std::vector<int> tp_fds_;  // the numbers they wait on (FdSlot::tp_listed)
  std::uint32_t round_ = 1;
  std::uint64_t next_recheck_ns_ = 0;
  std::uint32_t polls_ = 0;
};

}  // namespace

std::unique_ptr<Reactor> create_epoll_reactor(Scheduler& s, std::string& why) {
  auto r = std::make_unique<EpollReactor>(s);
  if (!r->init(why)) return nullptr;
  return r;
}

}  // namespace ringlet::detail
