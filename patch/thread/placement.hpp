// Which carrier a new fiber thread goes to (placement.cpp), and the counts it goes by.
#pragma once

#include <cstdint>

#include "ringlet/time.hpp"

namespace ringlet::patch::detail {

// The carrier for a thread the calling fiber makes now, counted there at once (main counted
// on carrier 0 while main_on_0). Throws std::bad_alloc when the caller's record of its last
// thread cannot be made (then nothing is counted).
unsigned place_thread(bool main_on_0);
// The thread could not be made after all: uncounts it.
void placement_undo(unsigned carrier) noexcept;
// The thread placed on `from` is made on `to` instead (from's loop did not answer in time).
void placement_moved(unsigned from, unsigned to) noexcept;
// The calling fiber made thread seq (after place_thread in the same fiber).
void placement_made(std::uint64_t seq) noexcept;
// Thread seq, started at made (its body's first step), ends on carrier (before its joiners
// are woken).
void placement_ended(unsigned carrier, std::uint64_t seq, ringlet::Clock::time_point made) noexcept;
// In a forked child: the only thread is the caller (on carrier 0), if a fiber thread.
void placement_after_fork(bool caller_is_thread) noexcept;

}  // namespace ringlet::patch::detail
