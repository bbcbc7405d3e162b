// Statistics shared by the profiler's reports and models: the mean, the
// median and linearly interpolated quantiles (numpy's default), NaN for no data.
#pragma once
#include <vector>

namespace flashnas {

// q in [0, 1] of an already sorted vector; NaN when empty.
double quantile_sorted(const std::vector<double>& sorted, double q);
// The same of any vector (sorted on a copy).
double quantile(std::vector<double> v, double q);
double median(std::vector<double> v);
double mean(const std::vector<double>& v);

}  // namespace flashnas
