#include "ringlet/net/socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "internal/hot.hpp"
#include "internal/io.hpp"
#include "internal/sys.hpp"
#include "ringlet/net/dns.hpp"

namespace ringlet::net {

using detail::IoRequest;

namespace {

int new_socket(int domain, int type) {
  int fd = detail::sys::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

void set_error(std::error_code& ec, long r) { ec.assign(static_cast<int>(-r), std::system_category()); }

bool retry_accept(long r) {
  // accept(2): errors of the connection being accepted, not of the listener; take the next.
  // (Not EOPNOTSUPP, which the man page also lists: a socket that cannot accept at all
  // answers it every time, and retrying would spin.)
  switch (-r) {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
    case ENONET: case EHOSTUNREACH: case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

}  // namespace

// --- Socket -----------------------------------------------------------------------------

Socket::Socket(int fd) : fd_(fd) {
  if (fd < 0) return;
  int fl = detail::sys::fcntl(fd, F_GETFL);
  if (fl < 0 || detail::sys::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      detail::sys::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    fd_ = -1;
    throw std::system_error(e, std::system_category(), "ringlet::net::Socket: adopting fd " + std::to_string(fd));
  }
  // Whoever had it may have set a low-water mark or an upper layer (kernel TLS) on it.
  if (detail::reads_shaped(fd)) shaped_.store(true, std::memory_order_relaxed);
}

Socket::Socket(Socket&& o) noexcept : fd_(o.fd_.exchange(-1)) { inherit_shape(*this, o); }

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = o.fd_.exchange(-1);
    inherit_shape(*this, o);
  }
  return *this;
}

Socket::~Socket() { close(); }

void Socket::close() noexcept {
  if (fd_ < 0) return;
  const int fd = fd_.exchange(-1);
  // Fibers (of any core) blocked on it: their operations end with EBADF before the number
  // can be reused.
  if (busy_.load() > 0) detail::close_waiting(fd);
  else detail::fd_replaced(fd);  // nobody waits: the engine drops what it keeps
  detail::sys::close(fd);
}

int Socket::release() noexcept {
  const int fd = fd_.exchange(-1);
  // Its closes are the caller's from now on, unseen: the engine keeps nothing about it.
  if (fd >= 0 && busy_.load() == 0) detail::fd_replaced(fd);
  return fd;
}

Address Socket::local_address() const {
  Address a;
  socklen_t len = Address::capacity();
  if (::getsockname(fd_, a.data(), &len) != 0) raise(-errno, "local_address");
  return Address::from_sockaddr(a.data(), len);
}

void Socket::set_option(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) raise(-errno, "set_option");
  if (level == SOL_SOCKET && name == SO_RCVLOWAT) shaped_.store(value > 1, std::memory_order_relaxed);
}

int Socket::get_option(int level, int name) const {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(fd_, level, name, &v, &len) != 0) raise(-errno, "get_option");
  return v;
}

RINGLET_HOT long Socket::io(IoRequest& q, Deadline d) {
  if (fd_ < 0) return -EBADF;
  q.fd = fd_;
  q.closes_seen = true;  // close() below says every close: the engine may keep its registration
  // Counted while inside, so that close() knows to call close_waiting (which makes the
  // operation answer -EBADF).
  struct Busy {
    std::atomic<std::uint32_t>& n;
    explicit Busy(std::atomic<std::uint32_t>& c) noexcept : n(c) { ++n; }
    ~Busy() { --n; }
  } busy{busy_};
  return detail::perform_or_throw(q, d);
}

std::size_t Socket::result(long r, std::error_code& ec) noexcept {
  if (r < 0) {
    set_error(ec, r);
    return 0;
  }
  ec.clear();
  return static_cast<std::size_t>(r);
}

std::size_t Socket::result(long r, const char* call) const {
  if (r < 0) raise(r, call);
  return static_cast<std::size_t>(r);
}

void Socket::raise(long r, const char* call) const {
  std::string what = std::string("ringlet::net::") + call;
  if (fd_ < 0) {
    what += r == -EBADF ? ": the socket is closed (or was closed while waiting)" : "";
  } else {
    Address a;
    socklen_t len = Address::capacity();
    if (::getpeername(fd_, a.data(), &len) == 0)
      what += " (peer " + Address::from_sockaddr(a.data(), len).to_string() + ")";
    else if (len = Address::capacity(); ::getsockname(fd_, a.data(), &len) == 0)
      what += " (on " + Address::from_sockaddr(a.data(), len).to_string() + ")";
  }
  throw std::system_error(static_cast<int>(-r), std::system_category(), what);
}

// --- TcpStream ----------------------------------------------------------------------------

namespace {
// Connect one address; returns the stream or sets ec.
TcpStream connect_one(const Address& a, Deadline d, std::error_code& ec) {
  ec.clear();
  int fd = new_socket(a.domain(), SOCK_STREAM);
  if (fd < 0) {
    set_error(ec, fd);
    return {};
  }
  TcpStream s(fd, Socket::adopted);  // closes fd if the wait throws (kill, Timeout)
  long r = detail::connect(fd, a.data(), a.size(), d);
  if (r == 0) return s;
  set_error(ec, r);
  return {};
}
}  // namespace

TcpStream TcpStream::connect(const Address& a, Deadline d, std::error_code& ec) {
  return connect_one(a, d, ec);
}

TcpStream TcpStream::connect(const Address& a, Deadline d) {
  std::error_code ec;
  TcpStream s = connect_one(a, d, ec);
  if (ec) throw std::system_error(ec, "ringlet::net::TcpStream::connect(" + a.to_string() + ")");
  return s;
}

namespace {
TcpStream connect_each(std::span<const Address> as, Deadline d, std::error_code& ec,
                       const Address** failed) {
  if (as.empty()) {
    ec = std::make_error_code(std::errc::address_not_available);
    return {};
  }
  for (const Address& a : as) {
    TcpStream s = connect_one(a, d, ec);
    if (!ec) return s;
    *failed = &a;
    if (ec == std::errc::timed_out && d.passed()) break;  // no time left for the others
  }
  return {};
}
}  // namespace

TcpStream TcpStream::connect(std::span<const Address> as, Deadline d, std::error_code& ec) {
  const Address* failed = nullptr;
  return connect_each(as, d, ec, &failed);
}

TcpStream TcpStream::connect(std::string_view address, Deadline d, std::error_code& ec) {
  auto as = resolve(address, d, ec);
  if (ec) return {};
  const Address* failed = nullptr;
  return connect_each(as, d, ec, &failed);
}

TcpStream TcpStream::connect(std::string_view address, Deadline d) {
  auto as = resolve(address, d);
  std::error_code ec;
  const Address* failed = nullptr;
  TcpStream s = connect_each(as, d, ec, &failed);
  if (ec) {
    std::string what = "ringlet::net::TcpStream::connect(\"" + std::string(address) + "\")";
    if (failed && as.size() > 1) what += " last tried " + failed->to_string();
    throw std::system_error(ec, what);
  }
  return s;
}

namespace {
// plain: the caller reads the bytes as queued (IoRequest::plain_reads): a stream of ours has
// no kernel TLS under it, and says whether it has a low-water mark (shaped_).
IoRequest recv_request(MutableBuffer b, bool plain) {
  IoRequest q = detail::buffer_request(IoRequest::Op::Recv, -1, b.data, b.size, 0, "recv");
  q.plain_reads = plain;
  return q;
}
IoRequest send_request(ConstBuffer b) {
  return detail::buffer_request(IoRequest::Op::Send, -1, b.data, b.size, MSG_NOSIGNAL, "send");
}
}  // namespace

RINGLET_HOT std::size_t TcpStream::read_some(MutableBuffer b, Deadline d, std::error_code& ec) {
  auto q = recv_request(b, !shaped_.load(std::memory_order_relaxed));
  return result(io(q, d), ec);
}

RINGLET_HOT std::size_t TcpStream::read_some(MutableBuffer b, Deadline d) {
  auto q = recv_request(b, !shaped_.load(std::memory_order_relaxed));
  return result(io(q, d), "TcpStream::read_some");
}

std::size_t TcpStream::read_exact(MutableBuffer b, Deadline d, std::error_code& ec) {
  auto* p = static_cast<char*>(b.data);
  std::size_t got = 0;
  ec.clear();
  while (got < b.size) {
    std::size_t n = read_some({p + got, b.size - got}, d, ec);
    if (ec || n == 0) break;
    got += n;
  }
  return got;
}

std::size_t TcpStream::read_exact(MutableBuffer b, Deadline d) {
  std::error_code ec;
  std::size_t n = read_exact(b, d, ec);
  if (ec) raise(-ec.value(), "TcpStream::read_exact");
  return n;
}

RINGLET_HOT std::size_t TcpStream::write_some(ConstBuffer b, Deadline d, std::error_code& ec) {
  auto q = send_request(b);
  return result(io(q, d), ec);
}

RINGLET_HOT std::size_t TcpStream::write_some(ConstBuffer b, Deadline d) {
  auto q = send_request(b);
  return result(io(q, d), "TcpStream::write_some");
}

RINGLET_HOT std::size_t TcpStream::write_all(ConstBuffer b, Deadline d, std::error_code& ec) {
  const auto* p = static_cast<const char*>(b.data);
  std::size_t done = 0;
  ec.clear();
  do {
    done += write_some({p + done, b.size - done}, d, ec);
  } while (!ec && done < b.size);
  return done;
}

RINGLET_HOT void TcpStream::write_all(ConstBuffer b, Deadline d) {
  // No std::error_code here: making one calls libstdc++'s system_category(), a code page
  // more on every message's path.
  const auto* p = static_cast<const char*>(b.data);
  std::size_t done = 0;
  do {
    auto q = send_request({p + done, b.size - done});
    done += result(io(q, d), "TcpStream::write_all");
  } while (done < b.size);
}

namespace {
constexpr std::size_t kIovBatch = 64;  // iovecs per sendmsg, on the stack

// One sendmsg of up to kIovBatch buffers, skipping `skip` bytes of the first; lives on the
// caller's stack while the operation runs.
struct IovBatch {
  iovec iov[kIovBatch];
  msghdr msg{};
  IoRequest q;
  IovBatch(std::span<const ConstBuffer> bs, std::size_t skip) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < bs.size() && n < kIovBatch; ++i) {
      const std::size_t off = i == 0 ? skip : 0;
      if (bs[i].size == off) continue;
      iov[n++] = iovec{const_cast<char*>(static_cast<const char*>(bs[i].data)) + off, bs[i].size - off};
    }
    msg.msg_iov = iov;
    msg.msg_iovlen = n;
    q.op = IoRequest::Op::SendMsg;
    q.msg = &msg;
    q.flags = MSG_NOSIGNAL;
    q.what = "sendmsg";
  }
};
}  // namespace

std::size_t TcpStream::writev_some(std::span<const ConstBuffer> bs, Deadline d) {
  IovBatch batch(bs, 0);
  if (batch.msg.msg_iovlen == 0) return 0;
  return result(io(batch.q, d), "TcpStream::writev_some");
}

std::size_t TcpStream::writev_all(std::span<const ConstBuffer> bs, Deadline d, std::error_code& ec) {
  ec.clear();
  std::size_t total = 0, i = 0, skip = 0;
  while (i < bs.size()) {
    if (bs[i].size == skip) {  // this buffer is done (or empty)
      ++i;
      skip = 0;
      continue;
    }
    IovBatch batch(bs.subspan(i), skip);
    std::size_t sent = result(io(batch.q, d), ec);
    if (ec) break;
    total += sent;
    while (i < bs.size() && sent >= bs[i].size - skip) {
      sent -= bs[i].size - skip;
      ++i;
      skip = 0;
    }
    skip += sent;
  }
  return total;
}

void TcpStream::writev_all(std::span<const ConstBuffer> bs, Deadline d) {
  std::error_code ec;
  writev_all(bs, d, ec);
  if (ec) raise(-ec.value(), "TcpStream::writev_all");
}

void TcpStream::shutdown(Shutdown how) {
  if (::shutdown(fd_, static_cast<int>(how)) != 0) raise(-errno, "TcpStream::shutdown");
}

void TcpStream::set_nodelay(bool on) {
  set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

bool TcpStream::nodelay() const { return get_option(IPPROTO_TCP, TCP_NODELAY) != 0; }

void TcpStream::set_keepalive(bool on) { set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0); }

void TcpStream::set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int probes) {
  set_option(SOL_SOCKET, SO_KEEPALIVE, 1);
  set_option(IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count()));
  set_option(IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(interval.count()));
  set_option(IPPROTO_TCP, TCP_KEEPCNT, probes);
}

Address TcpStream::peer_address() const {
  Address a;
  socklen_t len = Address::capacity();
  if (::getpeername(fd_, a.data(), &len) != 0) raise(-errno, "TcpStream::peer_address");
  return Address::from_sockaddr(a.data(), len);
}

// --- TcpListener --------------------------------------------------------------------------

TcpListener::TcpListener(TcpListener&& o) noexcept
    : Socket(std::move(o)), unlink_path_(std::exchange(o.unlink_path_, {})) {}

TcpListener& TcpListener::operator=(TcpListener&& o) noexcept {
  if (this != &o) {
    close();
    Socket::operator=(std::move(o));
    unlink_path_ = std::exchange(o.unlink_path_, {});
  }
  return *this;
}

TcpListener::~TcpListener() { close(); }

void TcpListener::close() noexcept {
  Socket::close();
  if (!unlink_path_.empty()) {
    ::unlink(unlink_path_.c_str());
    unlink_path_.clear();
  }
}

namespace {
// Is a Unix socket file at `a` a leftover nobody listens on?
bool stale_unix_socket(const Address& a) {
  int fd = detail::sys::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool stale = detail::sys::connect(fd, a.data(), a.size()) != 0 && errno == ECONNREFUSED;
  detail::sys::close(fd);
  return stale;
}
}  // namespace

TcpListener TcpListener::bind(const Address& a, ListenOptions opts) {
  const std::string what = "ringlet::net::TcpListener::bind(" + a.to_string() + ")";
  auto fail = [&](int e) -> TcpListener { throw std::system_error(e, std::system_category(), what); };
  int fd = new_socket(a.domain(), SOCK_STREAM);
  if (fd < 0) fail(-fd);
  TcpListener l(fd, adopted);
  const int one = 1, zero = 0;
  if (a.family() != Family::Unix) {
    if (opts.reuse_address && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) fail(errno);
    if (opts.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) fail(errno);
  }
  if (a.family() == Family::IPv6 &&
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, opts.v6_only ? &one : &zero, sizeof one) != 0)
    fail(errno);
  if (::bind(fd, a.data(), a.size()) != 0) {
    const int e = errno;
    const std::string path = a.host();
    if (e != EADDRINUSE || a.family() != Family::Unix || path[0] == '@' || !stale_unix_socket(a)) fail(e);
    ::unlink(path.c_str());  // a dead process's socket file
    if (::bind(fd, a.data(), a.size()) != 0) fail(errno);
  }
  if (a.family() == Family::Unix && a.host()[0] != '@') l.unlink_path_ = a.host();
  if (::listen(fd, opts.backlog) != 0) fail(errno);
  return l;
}

TcpListener TcpListener::bind(std::string_view address, ListenOptions opts) {
  if (is_unix_address(address)) return bind(Address::parse(address), opts);
  auto as = resolve(address);
  return bind(as.front(), opts);
}

TcpStream TcpListener::accept(Deadline d, std::error_code& ec, Address* peer) {
  for (;;) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    IoRequest q;
    q.op = IoRequest::Op::Accept;
    q.buf = peer ? &ss : nullptr;
    q.aux = peer ? &len : nullptr;
    q.flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    q.what = "accept";
    long r = io(q, d);
    if (r < 0 && retry_accept(r)) continue;
    const auto fd = static_cast<int>(result(r, ec));
    if (ec) return {};
    if (peer) *peer = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    TcpStream s(fd, adopted);
    inherit_shape(s, *this);
    return s;
  }
}

TcpStream TcpListener::accept(Deadline d, Address* peer) {
  std::error_code ec;
  TcpStream s = accept(d, ec, peer);
  if (ec) raise(-ec.value(), "TcpListener::accept");
  return s;
}

// --- UdpSocket ----------------------------------------------------------------------------

UdpSocket::UdpSocket(Family family) {
  if (family != Family::IPv4 && family != Family::IPv6)
    throw std::invalid_argument("ringlet::net::UdpSocket: family must be IPv4 or IPv6");
  int fd = new_socket(family == Family::IPv4 ? AF_INET : AF_INET6, SOCK_DGRAM);
  if (fd < 0) throw std::system_error(-fd, std::system_category(), "ringlet::net::UdpSocket");
  fd_ = fd;
}

UdpSocket UdpSocket::bind(const Address& a) {
  int fd = new_socket(a.domain(), SOCK_DGRAM);
  const std::string what = "ringlet::net::UdpSocket::bind(" + a.to_string() + ")";
  if (fd < 0) throw std::system_error(-fd, std::system_category(), what);
  UdpSocket s(fd, adopted);
  if (::bind(fd, a.data(), a.size()) != 0) throw std::system_error(errno, std::system_category(), what);
  return s;
}

UdpSocket UdpSocket::bind(std::string_view address) {
  if (is_unix_address(address)) return bind(Address::parse(address));
  return bind(resolve(address).front());
}

void UdpSocket::connect(const Address& peer) {
  if (detail::sys::connect(fd_, peer.data(), peer.size()) != 0) raise(-errno, "UdpSocket::connect");
}

namespace {
// A datagram's message header, on the caller's stack while the operation runs.
struct Datagram {
  iovec iov;
  msghdr msg{};
  sockaddr_storage from;
  IoRequest q;
  Datagram(const void* buf, std::size_t n, const Address* to) : iov{const_cast<void*>(buf), n} {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (to) {
      msg.msg_name = const_cast<sockaddr*>(to->data());
      msg.msg_namelen = to->size();
      q.op = IoRequest::Op::SendMsg;
      q.flags = MSG_NOSIGNAL;
      q.what = "sendto";
    } else {
      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      q.op = IoRequest::Op::RecvMsg;
      q.what = "recvfrom";
    }
    q.msg = &msg;
  }
  Address sender() const { return Address::from_sockaddr(reinterpret_cast<const sockaddr*>(&from), msg.msg_namelen); }
};
}  // namespace

std::size_t UdpSocket::send_to(ConstBuffer b, const Address& to, Deadline d, std::error_code& ec) {
  Datagram dg(b.data, b.size, &to);
  return result(io(dg.q, d), ec);
}

std::size_t UdpSocket::send_to(ConstBuffer b, const Address& to, Deadline d) {
  Datagram dg(b.data, b.size, &to);
  return result(io(dg.q, d), "UdpSocket::send_to");
}

std::size_t UdpSocket::recv_from(MutableBuffer b, Address* from, Deadline d, std::error_code& ec) {
  Datagram dg(b.data, b.size, nullptr);
  std::size_t n = result(io(dg.q, d), ec);
  if (!ec && from) *from = dg.sender();
  return n;
}

std::size_t UdpSocket::recv_from(MutableBuffer b, Address* from, Deadline d) {
  Datagram dg(b.data, b.size, nullptr);
  std::size_t n = result(io(dg.q, d), "UdpSocket::recv_from");
  if (from) *from = dg.sender();
  return n;
}

std::size_t UdpSocket::send(ConstBuffer b, Deadline d) {
  auto q = send_request(b);
  return result(io(q, d), "UdpSocket::send");
}

std::size_t UdpSocket::recv(MutableBuffer b, Deadline d) {
  auto q = recv_request(b, false);
  return result(io(q, d), "UdpSocket::recv");
}

}  // namespace ringlet::net
