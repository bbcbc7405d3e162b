// Replays summarised (search/replay.h): for each algorithm, over its seeds,
// the best top-rung loss after each amount of compute (median and
// quartiles on a grid of the budget), the final best, the architectures
// evaluated, the hypervolume per budget, and the compute at which the median
// best first reaches random search's final median best. As JSON, a CSV of
// the curves and an SVG plot.
#pragma once
#include <string>
#include <vector>

#include "common/json_io.h"
#include "search/replay.h"

namespace flashnas {

struct ReplayCurve {
  std::string algorithm;
  std::vector<int64_t> tokens;                     // grid
  std::vector<double> median, q25, q75;            // best loss over seeds (NaN while under half the seeds have one)
  double final_median = NAN, final_q25 = NAN, final_q75 = NAN;
  double evaluated_median = 0;
  std::vector<double> hypervolume_median;          // per budget
  int64_t tokens_to_target = -1;                   // -1: never reached
};

struct ReplaySummary {
  int64_t budget_tokens = 0;
  int seeds = 0;
  std::string baseline = "random";
  double target = NAN;                             // the baseline's final median best
  std::vector<std::string> budgets;
  std::vector<ReplayCurve> curves;
  json to_json() const;
  std::string text() const;
  std::string csv() const;
  std::string svg() const;
};

// InputError (naming --algorithms) unless every name is a replayable
// algorithm and the baseline, "random", is among them: checked before any
// replay runs.
void check_replay_algorithms(const std::vector<std::string>& algorithms);

// `runs[a]` are the seeds of algorithm a (all with the same budget). The
// baseline ("random") must be among them.
ReplaySummary summarize_replays(const std::vector<std::vector<ReplayRun>>& runs, const std::vector<std::string>& budgets,
                                int grid = 50);

}  // namespace flashnas
