// Where pthread_create puts a new fiber thread when the run has several carriers. It stays
// there for life (its thread-locals, CPU clock and signal bookkeeping live with it).
#include "placement.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>

#include "ringlet/fiber.hpp"
#include "ringlet/fiber_local.hpp"
#include "common.hpp"

namespace ringlet::patch::detail {

namespace {

// Live fiber threads per carrier (main is added on carrier 0 while it runs).
std::atomic<int> g_on_carrier[ringlet::patch::kMaxCarriers];
// Which threads have ended young, by sequence number (slot seq % kEnded holds 2 x seq + 1 for
// the last one that ended there within kShortLived of its start, 2 x seq for one
// that lived longer), so a creator can ask whether the thread it made last has ended so
// without touching its record (freed by then). A slot taken over by a later thread reads "not
// ended". Two cross-core wake-ups of a sleeping carrier cost about 45 us on the test VM: a
// fifth of the life of a thread that lives 200 us.
constexpr std::size_t kEnded = 1024;
constexpr auto kShortLived = std::chrono::microseconds(200);
std::atomic<std::uint64_t> g_ended[kEnded];
// Per fiber (main, a fiber thread, a plain fiber): the sequence number of the thread it made
// last, 0 for none.
ringlet::FiberLocal<std::uint64_t> g_last_made;

// Its creator's carrier when the thread the creator made last has ended within 200 us of its
// start (short threads made one at a time, as a create + join loop or a thread per short
// task does), unless another carrier has at least two fewer live fiber threads: such threads
// then cost no cross-core wake-up (a create + join on another carrier costs two of a sleeping
// carrier, which would be a large part of their life). Otherwise (the creator's first thread,
// its last one still runs or lived longer: a pool, a server's connections, a helper computing
// beside its creator) the carrier with the fewest, the lowest-numbered of equals, so threads
// that live on spread.
unsigned pick_carrier(unsigned here, bool last_made_short, bool main_on_0) noexcept {
  const unsigned n = ringlet::cores();
  if (n <= 1) return 0;
  auto live = [&](unsigned k) {
    return g_on_carrier[k].load(std::memory_order_relaxed) + (k == 0 && main_on_0 ? 1 : 0);
  };
  unsigned best = 0;
  int least = live(0);
  for (unsigned k = 1; k < n && least > 0; ++k) {
    const int c = live(k);
    if (c < least) least = c, best = k;
  }
  if (last_made_short && here < n && live(here) - least < 2) return here;
  return best;
}

}  // namespace

unsigned place_thread(bool main_on_0) {
  const std::uint64_t last = g_last_made.get();  // made here, so placement_made cannot fail
  const bool last_short =
      last != 0 && g_ended[last % kEnded].load(std::memory_order_acquire) == 2 * last + 1;
  const unsigned carrier = pick_carrier(ringlet::this_core(), last_short, main_on_0);
  g_on_carrier[carrier].fetch_add(1, std::memory_order_relaxed);  // counted before it runs
  return carrier;
}

void placement_undo(unsigned carrier) noexcept { g_on_carrier[carrier].fetch_sub(1, std::memory_order_relaxed); }

void placement_moved(unsigned from, unsigned to) noexcept {
  g_on_carrier[to].fetch_add(1, std::memory_order_relaxed);
  g_on_carrier[from].fetch_sub(1, std::memory_order_relaxed);
}

void placement_made(std::uint64_t seq) noexcept {
  if (std::uint64_t* last = g_last_made.find()) *last = seq;
}

void placement_ended(unsigned carrier, std::uint64_t seq, ringlet::Clock::time_point made) noexcept {
  g_on_carrier[carrier].fetch_sub(1, std::memory_order_relaxed);
  const bool young = ringlet::Clock::now() - made < kShortLived;
  g_ended[seq % kEnded].store(2 * seq + (young ? 1 : 0), std::memory_order_release);
}

void placement_after_fork(bool caller_is_thread) noexcept {
  for (auto& c : g_on_carrier) c.store(0, std::memory_order_relaxed);
  if (caller_is_thread) g_on_carrier[0].store(1, std::memory_order_relaxed);
}

}  // namespace ringlet::patch::detail
