// Shared by the examples: a program holding a descriptor per client needs more than the
// default soft limit of 1024. Lift it to the hard limit, as Go's runtime does at start.
#pragma once

#include <sys/resource.h>

inline void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}
