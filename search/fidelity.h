// Multi-fidelity training inside a search: rungs and asynchronous successive
// halving (ASHA, Li et al. 2018).
//
// A search config may give rungs, `[search] fidelities = [T0, T1, ...]`
// (training tokens, increasing) and `eta` (default 3). Every candidate is
// first trained to T0. A candidate that finished rung r is promoted to r+1
// as soon as it ranks in the top floor(n/eta) of the n candidates that
// finished rung r: asynchronously, so a worker never waits for a rung to
// fill. A promotion continues the candidate's run from its state at the start
// of rung r's decay (train/trainer.h, wsd schedule), so its result at T(r+1)
// equals a run planned for T(r+1) from the start; it costs
// T(r+1) - stable_end(T(r)) tokens. The study spends at most `token_budget`
// training tokens (default: trials * train.tokens, what a one-fidelity study
// of the same config spends), counting every rung started.
//
// With `[search] finalists = K` the top rung is not entered asynchronously:
// the rungs below run as above on the budget less K * cost(top), and once
// nothing below the top is left to train or promote, the K best of the rung
// below (by loss there) are promoted to the top rung, which the frontier and
// the pick compare. The top rung then ranks the finalists at a length chosen
// for what the pick will be trained to, not the first candidates to arrive.
//
// Without fidelities a study has one rung, train.tokens with the configured
// schedule, and stops after `trials` candidates, as before.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "search/config.h"
#include "study/study_store.h"
#include "train/dataset.h"
#include "train/recipe.h"

namespace flashnas {

class Rungs {
 public:
  explicit Rungs(const SearchConfig& cfg);
  bool multi() const { return recipes_.size() > 1; }
  int count() const { return static_cast<int>(recipes_.size()); }
  int top() const { return count() - 1; }
  // Training tokens at rung r, in whole steps.
  int64_t tokens(int r) const;
  const TrainRecipe& recipe(int r) const { return recipes_.at(static_cast<size_t>(r)); }
  // Tokens trained to reach rung r (from rung r-1's stable state for r >= 1).
  int64_t cost(int r) const;

 private:
  std::vector<TrainRecipe> recipes_;
};

struct Promotion {
  int64_t trial_id = 0, number = 0;
  int rung = 0;  // the rung to train to
};

// The next ASHA promotion, highest rung first, best loss first; nullopt when
// no candidate qualifies. With `promote_all` (bench tables) every candidate
// that finished a rung qualifies. With finalists, promotions to the top rung
// are considered only when `finals_open` (every rung below is done), and the
// finalists best of the rung below qualify.
std::optional<Promotion> next_promotion(const SearchConfig& cfg, const Rungs& rungs, const std::vector<TrialRow>& trials,
                                        bool finals_open = false);

// Training tokens of the budget kept for the finalists' rung: finalists *
// cost(top), 0 without finalists.
int64_t finalists_reserve(const SearchConfig& cfg, const Rungs& rungs);

// Training tokens the study has committed: every candidate trained or in
// flight at rung 0, and every promotion started (failed ones included).
int64_t tokens_committed(const Rungs& rungs, const std::vector<TrialRow>& trials);

// Of those, the tokens of work finished (done or failed).
int64_t tokens_finished(const Rungs& rungs, const std::vector<TrialRow>& trials);
// Training tokens the whole study plans to spend: trials * rung 0 for one
// fidelity, the token budget for successive halving, every rung of every
// candidate with promote = "all".
int64_t tokens_planned(const SearchConfig& cfg, const Rungs& rungs);

// InputError naming "search.fidelities[i]" when a rung needs more tokens than
// the training split holds (rungs must not repeat data), or "search.finalists"
// when their reserve leaves the rungs below less than one candidate.
void check_rungs_fit(const SearchConfig& cfg, const Rungs& rungs, const TokenDataset& data);

}  // namespace flashnas
