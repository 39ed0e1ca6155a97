#include "internal/native_thread.hpp"

#include <dlfcn.h>
#include <gnu/lib-names.h>
#include <signal.h>

#include <exception>
#include <memory>
#include <system_error>
#include <utility>

namespace ringlet::detail {

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RINGLET_SANITIZED_THREADS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RINGLET_SANITIZED_THREADS 1
#endif
#endif

struct Libc {
  int (*create)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*) = &::pthread_create;
  int (*join)(pthread_t, void**) = &::pthread_join;
  int (*detach)(pthread_t) = &::pthread_detach;
  int (*set_mask)(int, const sigset_t*, sigset_t*) = &::pthread_sigmask;
};

// The C library's own definitions, looked up in libc itself rather than by name: a library
// that interposes pthread_create (or pthread_sigmask) may turn a thread into something else,
// and these threads must be real. (Before glibc 2.34 the functions live in libpthread.)
// Under a sanitizer the names stay: its interceptor must set up every thread it watches.
const Libc& libc() noexcept {
  static const Libc l = [] {
    Libc r;
#ifndef RINGLET_SANITIZED_THREADS
    for (const char* so : {LIBC_SO, LIBPTHREAD_SO}) {
      void* h = ::dlopen(so, RTLD_NOLOAD | RTLD_LAZY);
      if (!h) continue;
      void* create = ::dlsym(h, "pthread_create");
      void* join = ::dlsym(h, "pthread_join");
      void* detach = ::dlsym(h, "pthread_detach");
      void* set_mask = ::dlsym(h, "pthread_sigmask");
      if (create && join && detach && set_mask) {
        r.create = reinterpret_cast<decltype(r.create)>(create);
        r.join = reinterpret_cast<decltype(r.join)>(join);
        r.detach = reinterpret_cast<decltype(r.detach)>(detach);
        r.set_mask = reinterpret_cast<decltype(r.set_mask)>(set_mask);
        break;
      }
    }
#endif
    return r;
  }();
  return l;
}

void* run(void* arg) noexcept {  // an exception out of the body ends the process, as with std::thread
  std::unique_ptr<std::function<void()>> fn(static_cast<std::function<void()>*>(arg));
  (*fn)();
  return nullptr;
}

}  // namespace

NativeThread::NativeThread(std::function<void()> fn) {
  const Libc& c = libc();
  auto body = std::make_unique<std::function<void()>>(std::move(fn));
  // The thread starts with every signal blocked (it inherits this mask), so that a signal
  // sent to the process reaches one of the program's own threads, whose handlers and waits
  // expect it, never a ringlet helper.
  sigset_t all, saved;
  sigfillset(&all);
  c.set_mask(SIG_SETMASK, &all, &saved);
  const int e = c.create(&id_, nullptr, &run, body.get());
  c.set_mask(SIG_SETMASK, &saved, nullptr);
  if (e != 0) throw std::system_error(e, std::generic_category(), "ringlet: cannot start a thread");
  body.release();  // the thread owns it now
  joinable_ = true;
}

NativeThread& NativeThread::operator=(NativeThread&& o) noexcept {
  if (this != &o) {
    if (joinable_) std::terminate();
    id_ = o.id_;
    joinable_ = std::exchange(o.joinable_, false);
  }
  return *this;
}

NativeThread::~NativeThread() {
  if (joinable_) std::terminate();
}

void NativeThread::join() {
  if (!joinable_) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "ringlet: join");
  if (const int e = libc().join(id_, nullptr)) throw std::system_error(e, std::generic_category(), "ringlet: join");
  joinable_ = false;
}

void NativeThread::detach() {
  if (!joinable_) throw std::system_error(std::make_error_code(std::errc::invalid_argument), "ringlet: detach");
  if (const int e = libc().detach(id_)) throw std::system_error(e, std::generic_category(), "ringlet: detach");
  joinable_ = false;
}

}  // namespace ringlet::detail
