// The search's random numbers: splitmix64 (common/splitmix.h), one 64-bit state that a study
// stores in SQLite after every draw it commits, so a resumed study continues
// the same sequence. Same results on every platform (no std distributions).
#pragma once
#include <charconv>
#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/splitmix.h"

namespace flashnas {

class Rng {
 public:
  explicit Rng(uint64_t state = 0) : state_(state) {}
  uint64_t next() {
    const uint64_t counter = state_;
    state_ += kSplitMixGamma;
    return splitmix64(counter);
  }
  // Uniform in [0, n), n > 0 (the modulo bias is below 2^-40 for our n).
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  // Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi) { return lo + below(hi - lo + 1); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[static_cast<size_t>(below(static_cast<int64_t>(v.size())))]; }
  uint64_t state() const { return state_; }
  std::string state_text() const { return std::to_string(state_); }
  // The state as state_text() wrote it; InputError naming `where` for any
  // other text (a damaged study row).
  static Rng from_text(const std::string& s, const std::string& where) {
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
      throw InputError(where + ": \"" + s + "\" is not a random-number state (an unsigned 64-bit integer)");
    }
    return Rng(v);
  }

 private:
  uint64_t state_;
};

}  // namespace flashnas
