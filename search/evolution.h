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
//   The child is the parent with exactly one gene mutated.
// The random baseline draws every slot at random.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/rng.h"
#include "search/study_store.h"

namespace flashnas {

struct Proposal {
  Genome genome;
  std::string origin;             // init | random | mutation
  std::optional<int64_t> parent;  // trial number
  std::optional<int64_t> cycle;
};

// nullopt: must wait for slots of the previous cycle still in flight.
// `attempt` counts earlier draws for this slot that were pruned or duplicated
// (a seeded design is tried once, then random draws follow).
std::optional<Proposal> propose(const SearchConfig& cfg, int64_t slot, int attempt, const std::vector<TrialRow>& trials,
                                Rng& rng);


}  // namespace flashnas
