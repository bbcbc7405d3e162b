// The guided proposer ([search] algorithm = "guided"): model-guided search.
//
// After the initial population (slots below `population`: the seeded
// designs, then random draws, as in aging evolution), every proposal:
//   1. fits a Gaussian process (search/surrogate.h) to every finished run of
//      the study: the candidate's features (search/arch_features.h) and, with
//      rungs, the log of the rung's tokens relative to the top rung, against
//      the validation loss. Runs still in flight join at the loss the model
//      predicts for them (kriging believer), so workers spread out;
//   2. builds a pool of `pool` candidates, half mutants (one or two genes) of
//      the best members (the lowest predicted loss; with objective
//      "pareto" the two best Pareto ranks over (first-budget latency,
//      predicted loss)), half fresh random draws. Each is priced by the LUT;
//      those outside the budgets or constraints, or already in the study,
//      are dropped;
//   3. trains the candidate with the highest optimistic improvement,
//      reference - (mean - kappa * sd), of the loss the model predicts at
//      rung 0 (the rung every candidate is trained to and ranked at for
//      promotion; higher rungs inform it through the rung feature), or with
//      [search] predict_at = "top" at the highest rung successive halving
//      promotes to (parents are then ranked there too). The
//      reference is the best predicted loss of the study ("loss"), or, with
//      "pareto", the best among trials no slower than the candidate (the
//      frontier at its latency). kappa ([search] kappa, default 1) weighs
//      uncertainty against promise.
// Large studies: the surrogate's hyperparameters are fitted on at most
// kSurrogateFitRows runs and its posterior conditioned on at most
// kSurrogatePosteriorRows (search/surrogate.h, surrogate_rows: the best half
// and an even spread of the rest), so a proposal stays well under a second
// at thousands of trials (bench/bench_propose.cpp); smaller studies use
// every run.
// Everything is derived from the stored trials and the study's random
// state, so a proposal is the same after kill -9 and resume.
#pragma once
#include <functional>
#include <optional>
#include <vector>

#include "search/config.h"
#include "search/evolution.h"
#include "search/rng.h"
#include "study/study_store.h"

namespace flashnas {

inline constexpr size_t kSurrogateFitRows = 128;
inline constexpr size_t kSurrogatePosteriorRows = 1024;

std::optional<Proposal> propose_guided(const SearchConfig& cfg, const std::vector<TrialRow>& trials, Rng& rng,
                                       const CandidateFn& price);

}  // namespace flashnas
