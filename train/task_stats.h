// Length statistics of task data (`flashnas data info`) and the latency
// budgets they suggest (`--suggest-budgets MS`).
#pragma once
#include <cstdint>
#include <string>

#include "common/json_io.h"
#include "train/token_file.h"

namespace flashnas {

struct LengthStats {
  int64_t p50 = 0, p90 = 0, p99 = 0, max = 0;  // tokens, nearest-rank percentiles
  double mean = 0;
  json to_json() const;
};

struct TaskStats {
  int64_t records = 0;
  LengthStats prompt, completion;  // completion tokens include the end marker's
  json to_json() const;
};

// Over every record of a task token file; InputError naming it for a text file.
TaskStats task_length_stats(const TokenFile& f);

// Nearest-rank percentile q (0..100] of `v` (sorted in place).
int64_t percentile(std::vector<int64_t>& v, double q);

// [[budgets]] tables for a config: "<prefix>-p90" (batch 1 at the p90 prompt
// and completion lengths, max_ms = max_ms) and "<prefix>-p99" (the p99
// lengths; its limit scales max_ms by the p99/p90 ratio of completion
// tokens, as decoding dominates an agent call). Comments name the source.
std::string suggest_budgets_toml(const TaskStats& s, double max_ms, const std::string& source,
                                 const std::string& prefix = "agent");

}  // namespace flashnas
