// Where the next candidate of a study comes from (the paper's Algorithm 1,
// made resumable and worker-safe by deriving everything from the stored
// trials):
//   slots 0 .. P-1: the initial population, first the seeded designs
//     ([search] init), then random genomes;
//   slot s >= P belongs to cycle c = (s - P) / K. Its parent is chosen from
//     the population as it stood when the cycle began: the last P trained
//     (done) slots below P + c*K. Until every slot below that boundary has
//     finished, the proposal waits, so all K offspring of a cycle see the same
//     population whatever the number of workers (the oldest K members have
//     then aged out: aging evolution).
//   Tournament: S members drawn without replacement; the parent is the one
//     with the lowest validation loss ("loss"), or with the lowest Pareto
//     rank over (loss, first-budget latency) within the population plus the
//     study's current frontier, ties broken by loss ("pareto").
//   With rungs (search/fidelity.h) losses are only compared at equal rungs.
//   The child is the parent with exactly one gene mutated. Given a pricer,
//   the parent is mutated again (a bounded number of times) while the child
//   is already in the study or outside the budgets.
// The random baseline draws every slot at random; "guided" (search/guided.h)
// fills the initial population the same way, then asks its surrogate.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/rng.h"
#include "study/study_store.h"

namespace flashnas {

struct Proposal {
  Genome genome;
  std::string origin;             // init | random | mutation | guided
  std::optional<int64_t> parent;  // trial number
  std::optional<int64_t> cycle;
};

// A candidate as the study would train it (width fitted), with what the
// guided proposer's surrogate needs of it.
struct Candidate {
  Genome genome;
  int64_t params = 0;
  std::vector<double> ms;  // predicted latency per budget (config order)
};
// Prices a genome for the guided proposer's pool: nullopt when it is outside
// the budgets or constraints, or already in the study. The real search
// prices with the LUT; a replay (search/replay.h) maps onto its table.
using CandidateFn = std::function<std::optional<Candidate>(const Genome&)>;

// nullopt: must wait for slots of the previous cycle still in flight.
// `attempt` counts earlier draws for this slot that were pruned or duplicated
// (a seeded design is tried once, then random draws follow). `price` is
// required by algorithm "guided" (Error without it); evolution uses it to
// avoid children that are duplicates or infeasible.
std::optional<Proposal> propose(const SearchConfig& cfg, int64_t slot, int attempt, const std::vector<TrialRow>& trials,
                                Rng& rng, const CandidateFn* price = nullptr);


}  // namespace flashnas
