// `flashnas export`: a study's trial as a self-describing model folder
// (docs/design.md, "Export folder"):
//   model.safetensors, config.json (ArchSpec, tokenizer, dtype, recipe),
//   tokenizer files, curve.csv, latency.json (predicted latency per budget
//   from the LUT and, when this machine is the LUT's device, the measured
//   one from bench), README.md (model card).
// Optionally trains the architecture longer first (same recipe, more tokens).
// Written into a temporary folder beside --out and renamed into place, so a
// failed export leaves nothing behind.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "profiler/judge.h"
#include "search/budget.h"

namespace flashnas {

struct ExportOptions {
  std::filesystem::path db, lut_db, out;
  std::filesystem::path artifacts;  // the study's run folders (default: <db>.runs; required with a PostgreSQL db)
  std::string study;
  std::optional<int64_t> trial;  // absent: the study's best trial
  int64_t train_tokens = 0;  // 0: keep the trial's short-run weights
  int threads = 0;
  bool measure = true;       // bench each budget's workload here (when the device matches)
};

// One budget's latency in an export: predicted from the LUT (ms), and
// measured here (median and p10/p90 of 3 rounds, ms) when this machine is the
// LUT's device and measuring was not turned off.
struct BudgetLatency {
  Budget budget;
  double predicted_ms = 0;
  bool meets_budget = false;
  std::optional<double> measured_ms, measured_p10_ms, measured_p90_ms;
  std::optional<Judgement> judgement;  // with measured_ms
  std::string why_not_measured;        // without it
  // (predicted - measured) / measured; NaN when not measured.
  double error() const;
  json to_json() const;
};

// What an export wrote: the folder and its latency report.
struct ExportResult {
  std::filesystem::path folder;
  int64_t trial = 0;                    // the study's trial number exported
  json lut_device;                      // the LUT's device record (fingerprint, threads, ...)
  std::string dtype, runtime;
  std::string table_verdict;            // the LUT's validation verdict, or "unvalidated"
  std::vector<std::string> measured_by; // commits that measured the LUT
  std::string this_build;
  std::vector<BudgetLatency> budgets;
  // latency.json's content.
  json latency_json() const;
  // One line per budget (predicted, measured and error), then the folder.
  std::string text() const;
};

ExportResult export_trial(const ExportOptions& o, const std::function<void(const std::string&)>& log);

}  // namespace flashnas
