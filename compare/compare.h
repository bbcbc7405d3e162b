// `flashnas compare`: is the study's pick better than the designs an
// engineer would build by hand for the same budget?
//
// For each budget of a study it assembles the contenders (search/baselines.h):
//   picks      the study's best trial by its objective ("pick-best") and the
//              largest model on the budget's frontier ("pick-largest")
//   baselines  Llama-style transformers (standard, deep-thin, wide-shallow),
//              every single-mixer stack of the space, the Nemotron-Flash
//              layer pattern, each sized to the budget on the study's table
//   rivals     the best trial of other studies in the database (--rival-study,
//              e.g. a random search of the same space)
//   user       ArchSpec files (--baseline FILE)
// and retrains every distinct architecture under one recipe: the study's
// recipe (data, batch, sequence length, warmup, clipping, weight
// normalization) with `tokens` training tokens (default 16x the study's top
// rung) on the given schedule, `seeds` seeds (seeds vary the initialisation;
// the data split and batch order are the study's), and a learning rate picked
// per architecture from a grid by a short run of `lr_tokens` tokens at the
// first seed (the lowest validation loss wins; when that is the grid's
// highest or lowest rate, one more rate beyond it is tried, the grid's step
// further, up to `lr_extend` times each way), or one rate for all (--lr).
// Every run's recipe is recorded with it. A run that another comparison in
// the database already made on the same data (same architecture, recipe,
// rate, seed and tokens; another study's too) takes that result instead of
// training again. Each finished run is evaluated on
// `eval_batches` held-out batches (loss, bits per byte) and, for task data,
// on the study's held-out records (completion bits per byte, exact match,
// valid JSON).
// Then every contender is measured end to end on this machine for every
// budget's workload, in `rounds` interleaved rounds (round r measures all
// contenders, in an order rotated by r, before round r + 1 starts), so that
// drift hits all alike; the fastest round's median is kept, as the profiler
// does. Measuring starts only when no run of the comparison trains.
//
// Everything lives in the study's database (compare/compare_store.h): a
// killed comparison resumes (a run continues from its last checkpoint and
// ends with the numbers it would have had); several processes (here or on
// other machines, through the same leases as the search) share the runs.
// Run folders: <artifacts>/<study>/compare-<name>/<arch hash>-<phase>-lr<lr>-seed<seed>/.
#pragma once
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "search/baselines.h"
#include "compare/compare_report.h"

namespace flashnas {

struct CompareOptions {
  std::filesystem::path db, lut_db, artifacts;
  std::string study, name = "compare";
  std::vector<std::string> budgets;              // budget names; empty: all of the study's
  std::vector<std::filesystem::path> baselines;  // ArchSpec files
  std::vector<std::string> rival_studies;        // other studies whose best trial joins
  std::vector<std::string> only;                 // contender labels to keep beside pick-best (empty: all)
  int64_t tokens = 0;        // retraining tokens per run; 0: 16 x the study's top rung
  int seeds = 2;
  std::optional<double> lr;  // one learning rate for every contender
  std::vector<double> lr_grid;  // the grid (empty: the study's rate x 1/3, 1, 3)
  int64_t lr_tokens = 0;     // tokens of a grid run; 0: the study's top rung
  int lr_extend = 2;         // a best rate on the grid's edge adds one beyond it, up to this many times each way
  std::string schedule = "cosine";
  int64_t eval_batches = 64;
  SizingOptions sizing;
  int rounds = 5;            // measurement rounds
  double min_seconds = 0.5;  // timed time per contender per round (at least 5 runs)
  bool measure = true;       // measure every contender here
  bool any_device = false;   // measure even though this machine is not the table's device
  bool train_only = false;   // a worker: train what is waiting, then return (no measuring)
  bool reuse = true;         // take a run's result from another comparison (same data) that made the same run
  int threads = 0;           // training threads (0: the study's recipe's, else LibTorch's default)
  double lease_s = 60, db_retry_s = 300;
};

// The contenders per budget, as run_compare would assemble them (checks the
// options and inputs the same way; writes nothing).
struct ComparePlan {
  std::vector<Budget> budgets;
  std::vector<std::vector<Contender>> contenders;  // per budget
  size_t architectures = 0;                        // distinct, over all budgets
  std::string text() const;                        // a table per budget
};
ComparePlan plan_compare(const CompareOptions& o, const std::function<void(const std::string&)>& log);

// Checks every option and input (InputError naming the flag, the file, the
// study or the budget, before anything is written), then trains, measures
// and returns the report. `log` receives progress lines with an ETA.
CompareReport run_compare(const CompareOptions& o, const std::function<void(const std::string&)>& log);

}  // namespace flashnas
