// The sanitizers' fiber interfaces, for the files that announce switches to them (the
// scheduler's switch, the unwinding of a suspended fiber): RINGLET_ASAN / RINGLET_TSAN are
// 1 in an AddressSanitizer / ThreadSanitizer build, undefined otherwise. Internal.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define RINGLET_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define RINGLET_TSAN 1
#endif
