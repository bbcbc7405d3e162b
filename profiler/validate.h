// Validation of a LUT against whole-model measurements (docs/latency.md, "Latency
// model"): held-out architectures are measured end to end with
// bench_workload and predicted from the LUT; per workload the report gives
// the share within +-5% and +-10%, the median and worst absolute relative
// error, and Spearman's rank correlation between predicted and measured.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "profiler/measure.h"
#include "profiler/predict.h"

namespace flashnas {

struct ValidationRow {
  std::string arch;      // name or summary
  std::string hash;
  double predicted_ms = 0, measured_ms = 0;
  double error() const { return (predicted_ms - measured_ms) / measured_ms; }  // signed, relative
};

struct WorkloadValidation {
  Workload workload;
  std::vector<ValidationRow> rows;
  double within5 = 0, within10 = 0;       // shares in [0, 1]
  double median_abs_error = 0, worst_abs_error = 0, mean_error = 0;
  double spearman = 0;
  json to_json() const;
};

struct ValidationReport {
  std::vector<WorkloadValidation> workloads;
  double seconds = 0;
  int rounds = 1;
  json to_json() const;
  std::string table() const;  // human-readable, one block per workload
};

// Spearman's rho with average ranks for ties; NaN for fewer than 2 points or
// a constant input.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

// How far the measurements of `now` and an earlier report (as JSON) of the
// same architectures and workloads lie apart: per workload the number of
// architectures in both, the share whose two measurements differ by at most
// 5% and 10%, and the median and worst relative difference. On a machine
// whose speed drifts, this bounds the accuracy any table can show.
json measurement_spread(const ValidationReport& now, const json& earlier);

// Summary statistics of rows (fills the fields of `v` from v.rows).
void summarize_validation(WorkloadValidation& v);

}  // namespace flashnas
