// Fiber-local storage: one value per fiber, like thread_local but per fiber.
#pragma once

#include <cstddef>
#include <new>

namespace ringlet {

namespace detail {
std::size_t fls_new_key() noexcept;
// The calling fiber's slot for key (the plain thread's slot when not on a fiber); created
// with make() on first use and destroyed with destroy() when the fiber ends.
void* fls_get(std::size_t key, void* (*make)(), void (*destroy)(void*));
// The calling fiber's slot for key if it was created, else null; never allocates.
void* fls_find(std::size_t key) noexcept;
}  // namespace detail

// Each fiber sees its own T, default-constructed on first access and destroyed when the
// fiber ends. On a plain thread, the thread has one instance of its own.
//
//   static ringlet::FiberLocal<RequestContext> ctx;
//   ctx->request_id = 42;
template <class T>
class FiberLocal {
 public:
  FiberLocal() noexcept : key_(detail::fls_new_key()) {}
  FiberLocal(const FiberLocal&) = delete;
  FiberLocal& operator=(const FiberLocal&) = delete;

  T& get() {
    return *static_cast<T*>(detail::fls_get(
        key_, [] { return static_cast<void*>(new T()); },
        [](void* p) { delete static_cast<T*>(p); }));
  }
  // This fiber's T if it has been created, else null (creates nothing, never throws).
  T* find() const noexcept { return static_cast<T*>(detail::fls_find(key_)); }
  T& operator*() { return get(); }
  T* operator->() { return &get(); }

 private:
  std::size_t key_;
};

}  // namespace ringlet
