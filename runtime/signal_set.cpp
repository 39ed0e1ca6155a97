#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "ringlet/io.hpp"
#include "ringlet/signal.hpp"
#include "internal/sys.hpp"

namespace ringlet {

SignalSet::SignalSet(std::initializer_list<int> signals) {
  sigemptyset(&set_);
  for (int s : signals) {
    if (sigaddset(&set_, s) != 0)
      throw std::system_error(EINVAL, std::system_category(), "ringlet::SignalSet: signal " + std::to_string(s));
  }
  if (int r = pthread_sigmask(SIG_BLOCK, &set_, &old_); r != 0)
    throw std::system_error(r, std::system_category(), "ringlet::SignalSet: pthread_sigmask");
  fd_ = ::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    throw std::system_error(e, std::system_category(), "ringlet::SignalSet: signalfd");
  }
}

SignalSet::~SignalSet() {
  detail::sys::close(fd_);
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

int SignalSet::wait(Deadline d) {
  signalfd_siginfo si{};
  std::error_code ec;
  std::size_t n = io::read(fd_, &si, sizeof si, d, ec);
  if (ec == std::errc::timed_out) return 0;
  if (ec) throw std::system_error(ec, "ringlet::SignalSet::wait");
  if (n != sizeof si) throw std::system_error(EIO, std::system_category(), "ringlet::SignalSet::wait: short read");
  return static_cast<int>(si.ssi_signo);
}

}  // namespace ringlet
