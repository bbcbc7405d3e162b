// The plan of a comparison (flashnas compare, compare/compare.h): everything
// checked and assembled before anything is written (contenders per budget,
// the distinct architectures, the recipes, the learning-rate grid), and the
// bookkeeping of its runs (which final runs can be planned, what is left).
// Internal to compare; compare/compare.cpp runs the plan.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "search/baselines.h"
#include "compare/compare.h"
#include "compare/compare_store.h"
#include "search/config.h"
#include "study/study_store.h"
#include "train/recipe.h"

namespace flashnas {
namespace compare_detail {

// Everything checked and assembled before anything is written.
struct Plan {
  SearchConfig cfg;
  StudyRow study;
  std::vector<Budget> budgets;                  // the compared budgets, in the study's order
  std::vector<int> budget_index;                // their index in cfg.budgets
  std::vector<std::vector<Contender>> contenders;  // per compared budget
  std::map<std::string, ArchSpec> archs;        // by hash: every distinct architecture
  TrainRecipe recipe;                           // the final runs' recipe, without lr and seed
  TrainRecipe lr_recipe;                        // a grid run's
  std::vector<double> grid;                     // the learning rates tried first (one: no grid)
  int lr_extend = 0;                            // rates added beyond an edge that wins, at most, each way
  nlohmann::json lut_device;                    // the table's device info
  double probe_reference_us = 0;                // the table's machine-speed reference (0: the table has none)
  nlohmann::json config;                        // what the comparison is (stored, hashed)
};

// Checks the options and builds the plan (reads only). InputError names the
// flag or file at fault.
Plan make_plan(const CompareOptions& o, const std::function<void(const std::string&)>& log);

// A learning rate as the run folders and messages write it ("0.003").
std::string lr_text(double lr);

// A run of `phase` ("lr" or "final") for architecture `hash` with recipe `r`, not yet claimed.
CompareRun pending_run(const std::string& hash, const std::string& phase, const TrainRecipe& r);

// A run's folder under the comparison's: <hash16>-<phase>-lr<lr>-seed<seed>.
std::string run_dir_name(const CompareRun& r);

// The final runs of every architecture whose grid runs all finished (at the
// rate with the lowest validation loss; a winning edge of the grid first gets
// one more rate beyond it); with one rate, from the start. Idempotent.
void plan_final_runs(CompareStore& store, int64_t cmp, const Plan& p, int seeds);

// The training runs still to finish: waiting (pending or running), not
// planned yet (an architecture's final runs wait for its grid), and the
// tokens still to train (a pending run that `reused` says another comparison
// already finished costs none: the ETA counts only what will be trained).
struct Remaining {
  int64_t done = 0, waiting = 0, unplanned = 0, tokens = 0;
};
Remaining remaining(const std::vector<CompareRun>& runs, const Plan& p, int seeds,
                    const std::function<bool(const CompareRun&)>& reused = nullptr);

}  // namespace compare_detail
}  // namespace flashnas
