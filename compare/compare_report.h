// A comparison's results (compare/compare.h), read from the study database:
// per budget, every contender with its retrained held-out loss per seed,
// its measured and predicted latency, and the verdict.
//
// Verdict, per budget: the study's pick ("pick-best") against every other
// contender whose latency is within the budget (measured, and normalised to
// the speed the latency table was profiled at when the machine-speed probe
// was read around every measurement, so that a contender near the budget's
// edge does not move in and out of it with the machine's load; predicted
// when the comparison was not measured, which the report says). The pick wins
// against one when its mean bits per byte is lower by more than twice the
// seed spread, the larger of the two contenders' standard deviations over
// seeds; "lower" when lower by less; "not lower" otherwise.
#pragma once
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "search/budget.h"
#include "search/space.h"
#include "compare/compare_store.h"

namespace flashnas {

struct ContenderResult {
  StoredContender c;
  double lr = NAN;                 // the rate of its final runs (NaN before chosen)
  json lr_trials;                  // [{lr, val_loss}] of the grid (empty with one rate)
  bool lr_at_edge = false;         // the chosen rate is still the highest or lowest tried
  std::vector<int64_t> seeds;      // finished final runs
  std::vector<double> bpb, loss;   // per finished seed: bits/byte, nats/token
  int failed = 0, waiting = 0;     // final runs failed, and not finished yet
  double bpb_mean = NAN, bpb_sd = NAN, bpb_min = NAN, bpb_max = NAN;
  std::optional<double> measured_ms, measured_p10_ms, measured_p90_ms;  // the fastest round, as measured
  // The fastest round at the latency table's machine speed (each round's
  // median divided by its probe / the table's reference): set when every
  // round of every contender has both readings, and then the verdict's.
  std::optional<double> measured_ref_ms;
  double speed_ratio = NAN;        // that round's probe / the table's reference (> 1: the machine ran slower)
  int rounds = 0;                  // measurement rounds stored
  json task;                       // task data: mean rates over seeds (null: none)
  json recipe;                     // the recipe of its first final run
  std::string outside_space;       // why the study's search could not have proposed it ("": it could, as far as known)

  // The latency the verdict uses: measured at the table's speed, else as
  // measured, else predicted (NaN: none).
  double latency_ms() const;
};

struct Versus {
  std::string label;
  double delta = NAN;   // contender's mean bpb - the pick's (positive: the pick is lower)
  double spread = NAN;  // the larger standard deviation over seeds
  std::string outcome;  // "wins" | "lower" | "not lower" | "incomplete"
  bool judged = true;   // false for the study's other picks: shown, not part of the verdict
};

struct BudgetComparison {
  Budget budget;
  std::vector<ContenderResult> rows;  // in the order they were assembled
  std::vector<Versus> versus;         // the pick against each in-budget contender (other picks included, not judged)
  std::vector<std::string> over_budget;  // contenders left out of the verdict: latency beyond the budget
  bool pick_wins = false;             // against every in-budget baseline (hand designs and --baseline files)
  std::string verdict;                // one sentence
};

struct CompareReport {
  std::string study, name, db, device;
  json config;
  bool measured = false;  // every contender measured on every workload
  bool normalised = false;  // and every measurement has a probe reading and the table a reference
  double speed_min = NAN, speed_max = NAN;  // the probe / reference range over the measurements
  bool complete = false;  // every run finished
  int64_t runs = 0, runs_done = 0, runs_failed = 0;
  std::vector<BudgetComparison> budgets;

  json to_json() const;
  std::string table() const;  // the per-budget tables and verdicts
  std::string svg() const;    // one panel per budget: latency against retrained bits/byte
};

// Reads comparison `name` of `study`. InputError naming what is absent.
CompareReport compare_report(const std::filesystem::path& db, const std::string& study, const std::string& name);
// The same from an open store and the study's budgets and space.
CompareReport compare_report(CompareStore& store, const ComparisonRow& cmp, const std::string& study,
                             const std::vector<Budget>& budgets, const SearchSpace& space);

}  // namespace flashnas
