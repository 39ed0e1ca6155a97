// NativeThread: an OS thread the runtime starts for itself (a core of a multi-core run, a
// ThreadPool worker, the blocking monitor). It is made with the C library's own
// pthread_create, whatever interposes pthread_create in the process, so it is always a real
// thread; and it starts with every signal blocked (see native_thread.cpp). Like std::thread,
// it must be joined or detached before it goes.
#pragma once

#include <pthread.h>

#include <functional>

namespace ringlet::detail {

class NativeThread {
 public:
  NativeThread() noexcept = default;
  // Starts fn on a new thread; std::system_error if none can be made.
  explicit NativeThread(std::function<void()> fn);
  NativeThread(NativeThread&& o) noexcept : id_(o.id_), joinable_(o.joinable_) { o.joinable_ = false; }
  NativeThread& operator=(NativeThread&& o) noexcept;
  ~NativeThread();  // std::terminate if still joinable, as std::thread

  bool joinable() const noexcept { return joinable_; }
  void join();
  void detach();

 private:
  pthread_t id_{};
  bool joinable_ = false;
};

}  // namespace ringlet::detail
