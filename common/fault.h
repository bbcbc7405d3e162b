// Test-only fault injection, so tests kill a process at an exact point
// without timing anything: FLASHNAS_FAULT=kill-<at>:N raises SIGKILL in this
// process at the N-th event of kind <at> (term-<at>:N raises SIGTERM, once,
// to check a safe stop; stop-<at>:N raises SIGSTOP, a worker paused until
// SIGCONT, as a machine that froze or lost its network). The events:
//   claim          search: a trial claimed (its transaction committed, nothing trained)
//   train-step     search: a training step of a first (rung-0) run; train: a step
//   result         search: a rung-0 result committed (before anything after it)
//   in-promotion   search: a training step of a promotion
//   profile-item   profile: a measurement (LUT entry round or end-to-end run) committed
//   compare-step   compare: a training step of a comparison's run
// Unset (as in every normal run), nothing happens.
#pragma once
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace flashnas {

struct Fault {
  std::string at;
  int64_t n = -1, seen = 0;
  int signal = SIGKILL;
  void hit(const char* what) {
    if (n > 0 && at == what && ++seen == n) std::raise(signal);
  }
  static Fault from_env() {
    Fault f;
    const char* e = std::getenv("FLASHNAS_FAULT");
    if (!e) return f;
    const std::string s = e;
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return f;
    if (s.rfind("kill-", 0) == 0) {
      f.at = s.substr(5, colon - 5);
    } else if (s.rfind("term-", 0) == 0) {
      f.at = s.substr(5, colon - 5);
      f.signal = SIGTERM;
    } else if (s.rfind("stop-", 0) == 0) {
      f.at = s.substr(5, colon - 5);
      f.signal = SIGSTOP;
    } else {
      return f;
    }
    f.n = std::strtoll(s.c_str() + colon + 1, nullptr, 10);
    return f;
  }
};

}  // namespace flashnas
