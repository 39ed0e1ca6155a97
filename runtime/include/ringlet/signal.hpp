// Waiting for POSIX signals on a fiber: SIGINT, SIGTERM, SIGHUP arrive as values instead of
// interrupting whatever runs.
//
//   ringlet::SignalSet signals{SIGINT, SIGTERM};   // create it early in main
//   int sig = signals.wait();                      // parks this fiber; others keep running
//
// While a SignalSet lives, its signals are blocked in the thread that created it and read
// from a signalfd through the reactor. Block them before starting other threads (threads
// inherit the mask); a thread that does not block them would take the default action.
// Destroying the set restores the previous mask, so a second Ctrl-C during a graceful
// shutdown that happens after it ends the process as usual.
#pragma once

#include <signal.h>

#include <initializer_list>

#include "ringlet/time.hpp"

namespace ringlet {

class SignalSet {
 public:
  SignalSet(std::initializer_list<int> signals);
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;

  // The next of the signals (its number), or 0 if the deadline passed first.
  int wait(Deadline d = Deadline::never());

 private:
  sigset_t set_;
  sigset_t old_;
  int fd_ = -1;
};

}  // namespace ringlet
