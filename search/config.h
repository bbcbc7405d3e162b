// A search config (TOML): the space, constraints, budgets, the short-training
// recipe and the search algorithm's settings. configs/demo.toml documents
// every field with its default.
//
//   [space] ... [space.ops.<type>] ...   search/space.h
//   [constraints] min_attention, max_params
//   [[budgets]] name, workload, max_ms | min_tokens_per_s   search/budget.h
//   [train] data = "tokens file", tokens, batch_size, seq_len, lr, ...,
//           objective = "loss" | "completion_bpb", task_eval_records,
//           task_eval_rungs = "top" | "all"
//   [search] algorithm = "guided" | "evolution" | "random", objective = "loss" | "pareto",
//            population, sample, offspring, trials, seed, init = [genomes], seed_baselines, pool, kappa,
//            predict_at = "first" | "top",
//            fidelities = [tokens per rung], eta, token_budget,
//            promote = "asha" | "all", finalists   (search/fidelity.h)
//   [latency] dtype, runtime   (which LUT entries price candidates)
#pragma once
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "search/budget.h"
#include "search/space.h"
#include "train/recipe.h"

namespace flashnas {

struct SearchSettings {
  std::string algorithm = "evolution";  // "guided" (search/guided.h) | "evolution" (aging evolution) | "random"
  std::string objective = "loss";       // "loss" | "pareto" (loss and first-budget latency)
  // Left out of a config, P follows the budget (default_population) and
  // S = max(2, round(P/3)), K = max(2, round(P/2)); measured in
  // results/search-bench/evolution-sweep.md.
  int population = 0;                   // P: members kept (the oldest leaves); guided: the initial random draws
  int sample = 0;                       // S: tournament size
  int offspring = 0;                    // K: offspring per cycle
  int trials = 24;                      // trained candidates in the study
  uint64_t seed = 0;
  std::vector<std::string> init;        // seeded designs (genome text), trained first
  // Seed the initial population with the hand designs of every budget that
  // the space can hold (search/baselines.h: Llama-style, single-mixer stacks,
  // the Nemotron-Flash pattern, sized to the budget on the study's table),
  // after `init`, up to the population: the search starts from what an
  // engineer would build and is judged against (flashnas compare).
  bool seed_baselines = false;
  int max_attempts = 2000;              // draws per slot before giving up (budgets unmeetable)
  int pool = 256;                       // guided (read, unused, by the others): candidates the surrogate ranks per proposal
  double kappa = 1;                     // guided: weight of the surrogate's uncertainty (mean - kappa * sd)
  // guided, with rungs: the rung whose loss the surrogate predicts to rank
  // parents and the pool. "first": rung 0, where every candidate is trained
  // (the most data, and the most bias toward models that learn fast early);
  // "top": the highest rung successive halving promotes to (below the
  // finalists' rung when there is one).
  std::string predict_at = "first";
  // Multi-fidelity training (asynchronous successive halving, search/fidelity.h).
  std::vector<int64_t> fidelities;      // training tokens per rung, increasing; empty: one rung of train.tokens
  double eta = 3;                       // promote the top 1/eta of a rung
  int64_t token_budget = 0;             // training tokens the study may spend (rungs only; default trials * train.tokens)
  bool promote_all = false;             // promote = "all" (bench tables): every candidate to every rung
  // > 0: the top rung is the finalists' (search/fidelity.h): once every rung
  // below is done, the `finalists` best of the rung below are promoted to it,
  // and the token budget keeps finalists * cost(top) for them from the start.
  int finalists = 0;
};

// The default population for a study that can afford `runs` full-length
// trainings (trials, or with rungs token_budget / the top rung's tokens):
// round(runs / 16), at least 4 and at most 64. On the demo table, at 25, 50
// and 100 runs over 200 seeded replays each, 4/2/2 reached random search's
// final median with 52%, 36% and 24% of the compute, against 60%, 42% and
// 26% for 8/3/4 (pareto objective).
inline int default_population(int64_t runs) {
  return int(std::clamp<int64_t>((runs + 8) / 16, 4, 64));
}

struct SearchConfig {
  std::string source;                   // file path
  json doc;                             // the whole config as JSON (stored with the study)
  SearchSpace space;
  std::vector<Budget> budgets;
  TrainRecipe recipe;
  std::filesystem::path data;           // token file (flashnas data prepare)
  // [train] objective: "loss" (default): the validation loss over the tokens
  // the data counts (every token of text; completion tokens of task data);
  // "completion_bpb": bits per completion byte, for task data only (refused
  // for text). On one data file both rank candidates in the same order; the
  // choice sets what the study reports as the fitness.
  std::string objective = "loss";
  // Task data: held-out records each trained trial completes greedily for
  // its task metrics (exact match, JSON), stored with the trial; 0: none.
  int64_t task_eval_records = 64;
  // At which rungs they do: "top" (default: only runs that reach the top
  // rung, where the study compares trials; greedy completion costs about as
  // much as a short rung's training, and a barely trained model's
  // completions are all wrong) or "all" (every rung, to follow the metrics
  // along training).
  std::string task_eval_rungs = "top";
  SearchSettings search;
  std::string dtype = "float32", runtime = "eager";

  // The search settings, rungs and budgets, a few lines for a log.
  std::string describe() const;

  static SearchConfig load(const std::filesystem::path& path);
  static SearchConfig from_json(const json& doc, const std::string& source);
};

}  // namespace flashnas
