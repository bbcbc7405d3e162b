// A study's results: the Pareto set of validation loss (bits per byte)
// against predicted latency (ms) for each budget's workload, as a table, JSON
// and an SVG plot (every trained trial as a point, the frontier as a step
// line, the budget's limit as a vertical line), plus the hypervolume of each
// frontier against a reference point (ref latency = the budget's limit; ref
// loss = --ref-bpb, or the worst trained loss of the study).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "search/config.h"
#include "study/study_store.h"

namespace flashnas {

struct BudgetFrontier {
  Budget budget;
  std::vector<int64_t> front;  // trial numbers, by latency ascending
  double hypervolume = 0;      // in ms x bits/byte
  double ref_ms = 0, ref_bpb = 0;
};

struct FrontierReport {
  std::string study, db, config_source;
  StudyRow record;                // the study's row (config, LUT device and table), read with the trials
  SearchSettings settings;
  std::vector<TrialRow> trials;   // all rows of the study
  std::vector<BudgetFrontier> budgets;
  int64_t trained = 0, failed = 0, pruned = 0, reused = 0, in_flight = 0;
  int64_t tokens_spent = 0;  // training tokens of finished work (search/fidelity.h)
  json proxy;                // the newest proxy report in the database for this space and recipe (null: none)
  // Multi-fidelity studies (search/fidelity.h): the frontier and the best
  // trial compare only trials at the highest rung any trial reached.
  int rungs = 0, rung = 0;  // rungs: 0 for a one-fidelity study
  int64_t rung_tokens = 0, n_compared = 0;
  bool finished = false;

  const TrialRow* by_number(int64_t n) const;
  // The trained trial with the lowest loss at `rung` (all trained trials meet every budget).
  const TrialRow* best() const;
  json to_json() const;
  std::string summary() const;  // counts and the best trial
  std::string table() const;    // the frontier per budget
  std::string svg() const;
};

// Reads the study (and the config stored with it). `ref_bpb` overrides the
// hypervolume's reference loss.
FrontierReport frontier_report(const std::filesystem::path& db, const std::string& study,
                               std::optional<double> ref_bpb = std::nullopt);
// Same, with an already loaded config (search prints its own study).
FrontierReport frontier_report(const SearchConfig& cfg, const std::filesystem::path& db, const std::string& study);

}  // namespace flashnas
