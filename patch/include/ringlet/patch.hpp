// The patch layer's controls, for a program that links libringlet_patch.so (pkg-config
// ringlet-patch). Linking it is enough to make blocking libc calls made on a ringlet fiber
// cooperative — by the program and by every library it uses (libcurl, a database client...);
// these functions only adjust that at run time. Under LD_PRELOAD / ringlet-run the same
// settings come from RINGLET_PATCH and RINGLET_PATCH_STATS.
//
//   ringlet::patch::disable(ringlet::patch::Dns);     // getaddrinfo blocks its thread again
//   std::fputs(ringlet::patch::stats_report().c_str(), stderr);
#pragma once

#include <cstdint>
#include <string>

// The library is built with hidden visibility; these are its API.
#define RINGLET_PATCH_API __attribute__((visibility("default")))

namespace ringlet::patch {

// The groups of interposed calls (gevent's patch_time, patch_socket, patch_select,
// patch_dns).
enum Group : unsigned {
  Time = 1u << 0,    // sleep, usleep, nanosleep, clock_nanosleep
  Socket = 1u << 1,  // socket, connect, accept, read/write/recv/send families, close, dup...
  Select = 1u << 2,  // poll, ppoll, select, pselect, epoll_wait, epoll_pwait
  Dns = 1u << 3,     // getaddrinfo, getnameinfo, gethostbyname, gethostbyname_r
  // pthread_create on a fiber starts a fiber; join, exit, keys, once, sched_yield follow.
  // Whether mutexes, condition variables, rwlocks, barriers and semaphores are fiber-aware
  // is fixed when the library loads (RINGLET_PATCH), not by enable()/disable().
  Thread = 1u << 4,
  // waitpid, wait, wait3, wait4, waitid, system, popen, pclose: waits for a child park.
  Process = 1u << 5,
  All = Time | Socket | Select | Dns | Thread | Process,
};

// The most OS threads (carriers) a patched program's threads may run on (RINGLET_THREADS,
// ringlet-run --threads).
inline constexpr unsigned kMaxCarriers = 1024;

// The groups in force (all by default, or as RINGLET_PATCH says).
RINGLET_PATCH_API unsigned enabled() noexcept;
RINGLET_PATCH_API void enable(unsigned groups) noexcept;
RINGLET_PATCH_API void disable(unsigned groups) noexcept;
// Parse a RINGLET_PATCH value ("all", "none", "time,socket", "-dns,-select", "all,-dns").
// Returns false and says why in `error` if it names something unknown.
RINGLET_PATCH_API bool parse_groups(const std::string& spec, unsigned& groups, std::string& error);

// Per-call counters: calls made on a fiber and handled by the patch, how many of those had
// to wait (went through the reactor), and calls passed straight to libc. Counted only while
// counting is on (RINGLET_PATCH_STATS=1, or set_counting(true)).
RINGLET_PATCH_API void set_counting(bool on) noexcept;
RINGLET_PATCH_API void reset_stats() noexcept;
struct CallStats {
  std::uint64_t on_fiber = 0;
  std::uint64_t waited = 0;
  std::uint64_t passed = 0;
};
// The counters of the call named `call` ("read", "poll", "getaddrinfo"...).
RINGLET_PATCH_API CallStats stats(const std::string& call);
// A table of every call with a non-zero counter (what RINGLET_PATCH_STATS prints at exit).
RINGLET_PATCH_API std::string stats_report();

}  // namespace ringlet::patch
