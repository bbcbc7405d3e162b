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

#include "common/json_io.h"

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

// Returns the latency report (latency.json's content).
json export_trial(const ExportOptions& o, const std::function<void(const std::string&)>& log);

}  // namespace flashnas
