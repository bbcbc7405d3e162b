#include "profiler/timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/stats.h"

namespace flashnas {

TimingStats summarize(std::vector<double> samples_us) {
  if (samples_us.empty()) throw Error("summarize: no timing samples");
  TimingStats s;
  s.count = static_cast<int64_t>(samples_us.size());
  std::vector<double> sorted = samples_us;
  std::sort(sorted.begin(), sorted.end());
  s.median_us = quantile_sorted(sorted, 0.5);
  s.p10_us = quantile_sorted(sorted, 0.1);
  s.p90_us = quantile_sorted(sorted, 0.9);
  s.min_us = sorted.front();
  s.mean_us = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(s.count);
  double var = 0;
  for (double v : sorted) var += (v - s.mean_us) * (v - s.mean_us);
  var = s.count > 1 ? var / static_cast<double>(s.count - 1) : 0.0;
  s.cv = s.mean_us > 0 ? std::sqrt(var) / s.mean_us : 0.0;
  s.samples_us = std::move(samples_us);
  return s;
}

void check_timing(const TimingOptions& o) {
  if (o.min_count < 1) throw InputError("--min-count: must be >= 1, got " + std::to_string(o.min_count));
  if (!(o.min_seconds >= 0) || !std::isfinite(o.min_seconds)) {
    throw InputError("--min-seconds: must be a finite number >= 0, got " + std::to_string(o.min_seconds));
  }
  if (o.warmup < 0) throw InputError("--warmup: must be >= 0, got " + std::to_string(o.warmup));
}

TimingStats measure(const std::function<void()>& fn, const TimingOptions& opts) {
  const auto now = [&opts] {
    if (opts.now_us) return opts.now_us();
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  for (int i = 0; i < opts.warmup; ++i) {
    fn();
    if (opts.sync) opts.sync();
  }
  std::vector<double> samples;
  double total_s = 0;
  while (static_cast<int>(samples.size()) < opts.max_count) {
    const double t0 = now();
    fn();
    if (opts.sync) opts.sync();
    const double us = now() - t0;
    samples.push_back(us);
    total_s += us * 1e-6;
    const bool enough = static_cast<int>(samples.size()) >= opts.min_count && total_s >= opts.min_seconds;
    const bool capped = static_cast<int>(samples.size()) >= opts.min_count && total_s >= opts.max_seconds;
    if (enough || capped) break;
  }
  return summarize(std::move(samples));
}

}  // namespace flashnas
