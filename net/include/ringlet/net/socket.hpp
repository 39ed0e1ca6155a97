// Sockets on fibers: TcpStream, TcpListener, UdpSocket.
//
//   auto listener = ringlet::net::TcpListener::bind("127.0.0.1:0");
//   ringlet::spawn([&] {
//     auto conn = listener.accept();
//     char buf[4096];
//     while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});   // 0 = EOF
//   });
//   auto c = ringlet::net::TcpStream::connect(listener.local_address(), 5s);
//
// Every blocking call is a switch point: on a fiber it parks the fiber and goes through the
// scheduler's reactor (io_uring, or epoll readiness + a non-blocking attempt); on a plain
// thread it is the ordinary blocking call. Each takes a deadline (an explicit one passing
// is std::errc::timed_out) and an enclosing ringlet::Timeout applies.
//
// Errors throw std::system_error naming the call and the address; the overloads taking
// std::error_code& report them there instead. End of stream is a value (a read of 0
// bytes), never an exception. Sends never raise SIGPIPE (MSG_NOSIGNAL): a closed peer is
// EPIPE or ECONNRESET. close() while other fibers of this thread are blocked on the socket
// wakes them with std::errc::bad_file_descriptor ("closed while waiting").
//
// TcpStream and TcpListener carry Unix-domain stream sockets too: give them a path
// ("/run/app.sock", "unix:rel/path", "@abstract"). The TCP-only options then fail with
// EOPNOTSUPP. Sockets are non-blocking and close-on-exec underneath.
#pragma once

#include <atomic>

#include <sys/uio.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ringlet/net/address.hpp"
#include "ringlet/time.hpp"

namespace ringlet::detail {
struct IoRequest;
}

namespace ringlet::net {

// A view of bytes to send: (pointer, size), a string, a contiguous range. A string literal
// is its characters without the NUL; a writable char array is all of it.
struct ConstBuffer {
  const void* data = nullptr;
  std::size_t size = 0;
  ConstBuffer() = default;
  ConstBuffer(const void* p, std::size_t n) noexcept : data(p), size(n) {}
  ConstBuffer(std::string_view s) noexcept : data(s.data()), size(s.size()) {}
  ConstBuffer(const std::string& s) noexcept : data(s.data()), size(s.size()) {}
  template <std::size_t N>
  ConstBuffer(const char (&literal)[N]) noexcept : data(literal), size(N - 1) {}
  template <std::size_t N>
  ConstBuffer(char (&array)[N]) noexcept : data(array), size(N) {}
  template <class R>
    requires(std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
             !std::is_convertible_v<R, std::string_view> &&
             std::is_trivially_copyable_v<std::ranges::range_value_t<R>>)
  ConstBuffer(const R& r) noexcept
      : data(std::ranges::data(r)), size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}
};

// A view of bytes to receive into: (pointer, size), a char array, a vector, a span.
struct MutableBuffer {
  void* data = nullptr;
  std::size_t size = 0;
  MutableBuffer() = default;
  MutableBuffer(void* p, std::size_t n) noexcept : data(p), size(n) {}
  template <class R>
    requires(std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
             !std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>> &&
             std::is_trivially_copyable_v<std::ranges::range_value_t<R>>)
  MutableBuffer(R&& r) noexcept
      : data(std::ranges::data(r)), size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}
};

enum class Shutdown { Read = 0, Write = 1, Both = 2 };

// What every socket shares: it owns its descriptor.
class Socket {
 public:
  Socket() noexcept = default;
  // Take ownership of fd (made non-blocking and close-on-exec; a low-water mark or kernel TLS
  // already on it is seen).
  explicit Socket(int fd);
  // Take ownership of an fd that is non-blocking and close-on-exec already.
  struct Adopted {};
  static constexpr Adopted adopted{};
  Socket(int fd, Adopted) noexcept : fd_(fd) {}
  Socket(Socket&& o) noexcept;
  Socket& operator=(Socket&& o) noexcept;
  ~Socket();

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }

  // Close now. Fibers of this thread blocked on the socket are woken with
  // std::errc::bad_file_descriptor. Closing a closed socket does nothing.
  void close() noexcept;
  // Give up ownership: the descriptor is the caller's to close.
  int release() noexcept;

  Address local_address() const;

  // setsockopt/getsockopt with an int value; std::system_error on failure. A low-water mark
  // set here (SO_RCVLOWAT above 1) is seen by the stream's reads and passed to the streams a
  // listener accepts; one set by setsockopt on fd() is not (see shaped_).
  void set_option(int level, int name, int value);
  int get_option(int level, int name) const;

 protected:
  // One blocking operation on this socket through the reactor's single path (q.fd is
  // filled in): the result, or -errno (-EBADF if closed before or while waiting).
  long io(detail::IoRequest& q, Deadline d);
  // r as a count, or the error in ec.
  static std::size_t result(long r, std::error_code& ec) noexcept;
  // r as a count, or a system_error from `call` that names the socket's address.
  std::size_t result(long r, const char* call) const;
  [[noreturn]] void raise(long r, const char* call) const;

  // Atomic: a socket may be shared by fibers of several cores (close() on one while a fiber
  // of another waits on it).
  std::atomic<int> fd_{-1};
  std::atomic<std::uint32_t> busy_{0};  // fibers inside perform(): close() cancels only if there are
  // Its reads do not return the bytes as queued (IoRequest::plain_reads): a low-water mark
  // above 1 set through set_option on this socket or the listener it was accepted from (the
  // kernel copies the mark), or found on a descriptor adopted by Socket(int fd) (a mark, or
  // an upper layer such as kernel TLS). Arrivals below a mark raise no event, and a record
  // layer may stop a read short with more queued: a short read does not mean an empty queue.
  std::atomic<bool> shaped_{false};
  // to's shaped_ is from's (an accepted stream, its listener; a move).
  static void inherit_shape(Socket& to, const Socket& from) noexcept {
    to.shaped_.store(from.shaped_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  }
};

class TcpStream : public Socket {
 public:
  TcpStream() noexcept = default;
  explicit TcpStream(int fd) : Socket(fd) {}
  TcpStream(int fd, Adopted a) noexcept : Socket(fd, a) {}

  // Connect to "host:port", "[v6]:port" or a Unix path, resolving names (dns.hpp) and
  // trying each address in turn until one accepts. The error is the last address's
  // (e.g. connection refused), naming it; std::errc::timed_out if d passes first.
  static TcpStream connect(std::string_view address, Deadline d = Deadline::never());
  static TcpStream connect(std::string_view address, Deadline d, std::error_code& ec);
  static TcpStream connect(const Address& address, Deadline d = Deadline::never());
  static TcpStream connect(const Address& address, Deadline d, std::error_code& ec);
  static TcpStream connect(std::span<const Address> addresses, Deadline d, std::error_code& ec);

  // Up to b.size bytes, as soon as any are there. 0 means end of stream (or b.size == 0).
  std::size_t read_some(MutableBuffer b, Deadline d = Deadline::never());
  std::size_t read_some(MutableBuffer b, Deadline d, std::error_code& ec);
  // Exactly b.size bytes, unless the stream ends first: returns how many arrived.
  std::size_t read_exact(MutableBuffer b, Deadline d = Deadline::never());
  std::size_t read_exact(MutableBuffer b, Deadline d, std::error_code& ec);

  std::size_t write_some(ConstBuffer b, Deadline d = Deadline::never());
  std::size_t write_some(ConstBuffer b, Deadline d, std::error_code& ec);
  // Every byte, in as many sends as it takes.
  void write_all(ConstBuffer b, Deadline d = Deadline::never());
  std::size_t write_all(ConstBuffer b, Deadline d, std::error_code& ec);  // bytes written

  // Vectored: several buffers in one sendmsg.
  std::size_t writev_some(std::span<const ConstBuffer> bs, Deadline d = Deadline::never());
  void writev_all(std::span<const ConstBuffer> bs, Deadline d = Deadline::never());
  void writev_all(std::initializer_list<ConstBuffer> bs, Deadline d = Deadline::never()) {
    writev_all(std::span<const ConstBuffer>(bs.begin(), bs.size()), d);
  }
  std::size_t writev_all(std::span<const ConstBuffer> bs, Deadline d, std::error_code& ec);

  // shutdown(2): Write sends end-of-stream to the peer (a half-close), Read stops reading.
  void shutdown(Shutdown how = Shutdown::Write);

  void set_nodelay(bool on = true);  // TCP_NODELAY
  bool nodelay() const;
  // SO_KEEPALIVE, and with times, TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
  void set_keepalive(bool on = true);
  void set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int probes);

  Address peer_address() const;
};

struct ListenOptions {
  int backlog = 4096;          // capped by net.core.somaxconn
  bool reuse_address = true;   // SO_REUSEADDR: rebind at once after a restart
  bool reuse_port = false;     // SO_REUSEPORT: several listeners share the port
  bool v6_only = false;        // IPV6_V6ONLY on an IPv6 wildcard ("[::]:port")
};

class TcpListener : public Socket {
 public:
  TcpListener() noexcept = default;
  explicit TcpListener(int fd) : Socket(fd) {}
  TcpListener(int fd, Adopted a) noexcept : Socket(fd, a) {}
  TcpListener(TcpListener&& o) noexcept;
  TcpListener& operator=(TcpListener&& o) noexcept;
  ~TcpListener();

  // Bind and listen on "host:port" (a name takes its first address; port 0 picks a free
  // one: see local_address()) or a Unix path. A Unix socket file left behind by a dead
  // process is replaced; the listener removes its file when closed.
  static TcpListener bind(std::string_view address, ListenOptions opts = {});
  static TcpListener bind(const Address& address, ListenOptions opts = {});

  // The next connection; *peer gets its address if given. std::errc::timed_out if d passes.
  TcpStream accept(Deadline d = Deadline::never(), Address* peer = nullptr);
  TcpStream accept(Deadline d, std::error_code& ec, Address* peer = nullptr);

  // Close, and remove the Unix socket file this listener created.
  void close() noexcept;

 private:
  std::string unlink_path_;
};

class UdpSocket : public Socket {
 public:
  UdpSocket() noexcept = default;
  explicit UdpSocket(int fd) : Socket(fd) {}
  UdpSocket(int fd, Adopted a) noexcept : Socket(fd, a) {}
  // An unbound socket of the family (IPv4 or IPv6); the kernel binds it at its first send.
  explicit UdpSocket(Family family);

  static UdpSocket bind(std::string_view address);
  static UdpSocket bind(const Address& address);

  // Set the default peer: send/recv then talk to it only.
  void connect(const Address& peer);

  // One datagram; returns the bytes sent.
  std::size_t send_to(ConstBuffer b, const Address& to, Deadline d = Deadline::never());
  std::size_t send_to(ConstBuffer b, const Address& to, Deadline d, std::error_code& ec);
  // One datagram into b (truncated to b.size if longer); *from gets the sender if given.
  std::size_t recv_from(MutableBuffer b, Address* from, Deadline d = Deadline::never());
  std::size_t recv_from(MutableBuffer b, Address* from, Deadline d, std::error_code& ec);

  std::size_t send(ConstBuffer b, Deadline d = Deadline::never());
  std::size_t recv(MutableBuffer b, Deadline d = Deadline::never());
};

}  // namespace ringlet::net
