// What the patch's in-process tests share: whether a pthread is a fiber in this build, and
// how many OS threads the process has.
#pragma once

#include <fstream>
#include <string>

namespace ringlet::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// ASan's and TSan's own pthread_create interceptors need a real thread: threads stay OS
// threads there, and only the objects' behaviour is checked.
inline constexpr bool kFibers = false;
#else
inline constexpr bool kFibers = true;
#endif

inline int os_threads() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  return -1;
}

}  // namespace ringlet::test
