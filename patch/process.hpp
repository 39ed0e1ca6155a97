// What process.cpp's child waits offer the rest of the process group (shell.cpp).
#pragma once

#include <sys/types.h>

namespace ringlet::patch::detail {

// waitpid(pid, status, 0) until it is not interrupted (system and pclose wait this way, as
// glibc's do): parked on a fiber, the real call elsewhere.
pid_t wait_child_retrying(pid_t pid, int* status) noexcept;

}  // namespace ringlet::patch::detail
