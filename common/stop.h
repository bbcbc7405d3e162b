// Stopping long work safely on SIGINT or SIGTERM (search, train, profile):
// while a StopSignals guard lives, the first such signal only records a
// request; the work checks stop_requested() at its safe points (between
// trials, training steps, measurements), leaves its stores consistent,
// releases what it holds and throws Stopped, which `main` turns into exit
// code 128 + the signal (130 for SIGINT, 143 for SIGTERM). A second signal
// while stopping ends the process at once, as without the guard (unless
// the guard says otherwise, below).
#pragma once
#include <string>

#include "common/error.h"

namespace flashnas {

// Thrown at a safe point after a stop request. what(): where it stopped and
// how to continue.
class Stopped : public Error {
 public:
  Stopped(int signal, const std::string& what) : Error(what), signal_(signal) {}
  int signal() const { return signal_; }
  int exit_code() const { return 128 + signal_; }

 private:
  int signal_;
};

// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int stop_requested();

// "SIGINT" / "SIGTERM" for messages.
std::string signal_name(int signal);

// Throws Stopped("<what> (stopped by SIG...)") when a stop was requested.
void throw_if_stopped(const std::string& what);

// Installs the handlers for its lifetime (restores the previous ones after).
// With second_ends false a second signal is only another request (a search
// worker process: its parent forwards the signal that a terminal's Ctrl-C
// has already sent the whole process group; the worker dies with its parent
// if that is killed).
class StopSignals {
 public:
  explicit StopSignals(bool second_ends = true);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

}  // namespace flashnas
