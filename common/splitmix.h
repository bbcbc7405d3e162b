// SplitMix64 (Steele, Lea and Flood 2014), the one mixing function behind
// every pseudo-random choice in flashnas: the data split and batch order
// (train/dataset.h) and the search's generator (search/rng.h). Same results on
// every platform.
#pragma once
#include <cstdint>

namespace flashnas {

inline constexpr uint64_t kSplitMixGamma = 0x9e3779b97f4a7c15ULL;

// The counter-based form: the output for counter value x.
constexpr uint64_t splitmix64(uint64_t x) {
  x += kSplitMixGamma;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace flashnas
