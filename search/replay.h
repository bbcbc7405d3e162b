// Search algorithms replayed against a bench table (search/bench_table.h)
// instead of training: `flashnas bench-search`.
//
// The table's architectures are the replay's space. A "training" is a
// look-up of the table's loss at the rung asked for, and costs what the
// real study would spend (search/fidelity.h: a rung-0 run, or a promotion
// continued from the previous rung's stable state). The proposer is the real
// search's (search/evolution.h: propose), and so is the promotion rule
// (next_promotion) and the token accounting; only the evaluator differs.
// A proposal is mapped onto the table: a random draw becomes a uniform draw
// among the rows not yet evaluated; a mutant or seeded design becomes the
// nearest row not yet evaluated by genome distance (genes that differ;
// ties drawn at random). Replays are sequential (one worker), so a study's
// cycles never wait, and deterministic for a seed.
//
// Algorithms: "random", "evolution", "guided" (each candidate trained to the
// top rung), and "random+asha", "evolution+asha", "guided+asha" (successive
// halving over the table's rungs, eta 3). The guided proposer's pool is
// mapped onto the table the same way (each pooled genome becomes its nearest
// row not yet evaluated). The default budget is the compute of 200 lowest-rung runs.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "search/bench_table.h"
#include "search/config.h"
#include "search/space.h"

namespace flashnas {

// A bench table with its config (FILE.json beside it) and genomes parsed.
struct ReplayTable {
  BenchTable table;
  SearchConfig cfg;                   // the config the table was made with
  std::vector<Genome> genomes;        // per row
  std::vector<std::vector<double>> loss;  // [row][rung], NaN where not reached
  std::vector<std::vector<double>> ms;    // [row][budget], predicted latency
  std::vector<int64_t> params;
  static ReplayTable load(const std::filesystem::path& csv);
  // Replaces [search] settings of the table's config ("population=4",
  // "objective=loss"; values are JSON where they parse, else strings).
  // InputError naming --set or the field for bad ones.
  void set_search(const std::vector<std::string>& assignments);
};

struct ReplayOptions {
  std::string algorithm = "evolution";  // random | evolution | guided, each optionally +asha
  uint64_t seed = 0;
  int64_t budget_tokens = 0;            // 0: 200 runs at the lowest rung
  double eta = 3;
};

struct ReplayPoint {
  int64_t tokens = 0;  // training tokens spent so far
  double best = 0;     // best top-rung loss so far (NaN before the first)
};

struct ReplayRun {
  std::string algorithm;
  uint64_t seed = 0;
  int64_t budget_tokens = 0, spent_tokens = 0;
  int64_t evaluated = 0;                // architectures trained (rung 0)
  std::vector<int64_t> per_rung;        // runs finished per rung
  std::vector<ReplayPoint> curve;       // after every finished run
  double final_best = 0;                // NaN when no run reached the top rung
  std::vector<double> hypervolume;      // per budget: top-rung trials, (predicted ms, loss), ref = the budget's limit
                                        // and the table's worst top-rung loss
  std::vector<size_t> rows;             // table rows evaluated, in order
  std::vector<std::pair<size_t, int>> events;  // every run, in order: (table row, rung)
  // Best top-rung loss after `tokens` (NaN before the first top-rung result).
  double best_at(int64_t tokens) const;
};

// InputError naming --algorithm unless `algorithm` is random, evolution or
// guided, each optionally +asha.
void check_replay_algorithm(const std::string& algorithm);

// One replay. InputError naming --algorithm or --budget-tokens for bad values.
ReplayRun replay(const ReplayTable& t, const ReplayOptions& o);

// The budget of 200 lowest-rung runs, in tokens.
int64_t default_replay_budget(const ReplayTable& t);

// Every algorithm of `algorithms` replayed with seeds first_seed ..
// first_seed + seeds - 1: result[a][s]. `progress(done, total, run)` is
// called after each replay (done counts from 1), so a caller can report
// how far it is.
std::vector<std::vector<ReplayRun>> replay_all(
    const ReplayTable& t, const std::vector<std::string>& algorithms, int seeds, uint64_t first_seed,
    const ReplayOptions& common, const std::function<void(int64_t, int64_t, const ReplayRun&)>& progress = {});

}  // namespace flashnas
