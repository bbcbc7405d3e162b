// Timing harness shared by the profiler, `flashnas bench` and bench/: warm up,
// then repeat until both a minimum count and a minimum time are reached (or a
// cap), and summarise the samples. Units: microseconds (the _us suffix).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace flashnas {

struct TimingOptions {
  int warmup = 3;             // untimed calls first
  int min_count = 10;         // at least this many timed samples
  double min_seconds = 0.2;   // and at least this much timed wall time
  int max_count = 100000;     // never more samples than this
  double max_seconds = 30.0;  // stop sampling after this much timed wall time (min_count still holds)
  // Called after each call before the clock stops (e.g. a CUDA synchronize);
  // empty on CPU, where calls are synchronous.
  std::function<void()> sync;
  // The clock, in microseconds; empty: std::chrono::steady_clock. Tests
  // inject one to check the count and time rules without the scheduler.
  std::function<double()> now_us;
};

struct TimingStats {
  int64_t count = 0;
  double median_us = 0, p10_us = 0, p90_us = 0, mean_us = 0, min_us = 0;
  double cv = 0;                   // sample standard deviation / mean
  std::vector<double> samples_us;  // raw samples, in the order taken
};

// Statistics of raw samples. Percentiles interpolate linearly between order
// statistics (numpy's default). Throws on an empty sample.
TimingStats summarize(std::vector<double> samples_us);

// Times `fn` under `opts`: one sample per call, steady clock.
TimingStats measure(const std::function<void()>& fn, const TimingOptions& opts = {});

// Checks counts and times a user gave (`bench`'s --min-count, --min-seconds):
// InputError naming the flag when out of range.
void check_timing(const TimingOptions& opts);

}  // namespace flashnas
