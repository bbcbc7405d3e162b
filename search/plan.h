// What a worker does next when no trial is waiting to be claimed: a
// promotion, a new candidate (with the pruned and reused draws before it),
// waiting, or the end of the study. The plan is a pure function of the
// study's trials and random state: a worker computes it (pricing candidates
// from the LUT, fitting the guided proposer's surrogate) outside any
// transaction, then applies it in a write transaction only if the study's
// state digest is still the one it planned from (otherwise it plans again).
// That keeps the one-writer section short and makes every proposal what a
// single worker would have proposed from the same state.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/fidelity.h"
#include "search/pricer.h"
#include "study/study_store.h"

namespace flashnas {

struct Plan {
  enum class Kind { wait, stop, promote, train } kind = Kind::wait;
  std::string wait_reason;  // kind wait: what it waits for (logs only)
  std::string stop_reason;  // kind stop: why no more trials are made, when not by count
  // promote: the trial and the rung to train it to.
  TrialRow trial;
  std::optional<Promotion> promotion;
  // train: rows to insert in order: pruned and reused draws, then (when
  // `claims`) the new candidate, inserted running under the worker's lease.
  std::vector<TrialRow> inserts;
  bool claims = false;
  std::string rng_state;  // the study's random state after the draws
  std::vector<std::string> log;  // lines to print once the plan is applied
  int64_t pruned = 0, reused = 0;
};

struct PlanLimits {
  int64_t max_slots = 0;  // candidates that passed the budgets, at most
};

// The next step for a study whose trials and random state are `trials` and
// `rng_state` (`where` names the study in messages). InputError when no draw
// can meet the budgets before the first candidate.
Plan plan_next(const SearchConfig& cfg, const Rungs& rungs, Pricer& pricer, const std::vector<TrialRow>& trials,
               const std::string& rng_state, const PlanLimits& limits, const std::string& where);

// Everything plan_next reads of a study, as text: two equal digests plan alike.
std::string study_digest(const std::vector<TrialRow>& trials, const std::string& rng_state);

}  // namespace flashnas
