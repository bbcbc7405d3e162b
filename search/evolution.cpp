#include "search/evolution.h"

#include "common/error.h"
#include "search/guided.h"
#include "search/pareto.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>

namespace flashnas {
namespace {
constexpr int kMutationDraws = 16;
}  // namespace

std::optional<Proposal> propose(const SearchConfig& cfg, int64_t slot, int attempt, const std::vector<TrialRow>& trials,
                                Rng& rng, const CandidateFn* price) {
  const SearchSpace& space = cfg.space;
  const SearchSettings& s = cfg.search;
  Proposal p;
  if (s.algorithm == "random") {
    p.genome = space.random(rng);
    p.origin = "random";
    return p;
  }
  if (slot < s.population) {
    if (slot < int64_t(s.init.size()) && attempt == 0) {
      p.genome = space.parse_genome(s.init[size_t(slot)], cfg.source + ": field \"search.init\"");
      p.origin = "init";
    } else {
      p.genome = space.random(rng);
      p.origin = "random";
    }
    return p;
  }
  if (s.algorithm == "guided") {
    if (!price) throw Error("propose: algorithm \"guided\" needs a candidate pricer");
    return propose_guided(cfg, trials, rng, *price);
  }
  const int64_t cycle = (slot - s.population) / s.offspring;
  const int64_t boundary = s.population + cycle * s.offspring;
  std::vector<const TrialRow*> done;
  for (const auto& t : trials) {
    if (!t.slot || *t.slot >= boundary) continue;
    if (t.status == "pending" || t.status == "running") return std::nullopt;
    if (t.status == "done") done.push_back(&t);
  }
  std::sort(done.begin(), done.end(), [](const TrialRow* a, const TrialRow* b) { return *a->slot < *b->slot; });
  std::vector<const TrialRow*> pop(done.size() > size_t(s.population) ? done.end() - s.population : done.begin(), done.end());
  p.cycle = cycle;
  if (pop.empty()) {
    // Every earlier candidate failed: nothing to mutate.
    p.genome = space.random(rng);
    p.origin = "random";
    return p;
  }
  // Losses are compared at equal rungs only (search/fidelity.h): two members
  // at the lower of their highest rungs; the Pareto ranks at the highest rung
  // every trained slot reached (rung 0 in a one-fidelity study).
  int common = INT32_MAX;
  for (const auto* t : done) common = std::min(common, t->rung);
  std::vector<int> rank(pop.size(), 0);
  if (s.objective == "pareto") {
    // The population plus the current frontier of all trained slots (elitism).
    std::vector<std::pair<double, double>> pts;
    for (const auto* t : done) pts.emplace_back(t->latency_ms, t->loss_at(common));
    const auto all_rank = pareto_ranks(pts);
    for (size_t i = 0; i < done.size(); ++i) {
      if (all_rank[i] == 0 && std::find(pop.begin(), pop.end(), done[i]) == pop.end()) pop.push_back(done[i]);
    }
    pts.clear();
    for (const auto* t : pop) pts.emplace_back(t->latency_ms, t->loss_at(common));
    rank = pareto_ranks(pts);
  }
  // Tournament: S distinct members.
  std::vector<size_t> idx(pop.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  const size_t k = std::min(idx.size(), size_t(s.sample));
  for (size_t i = 0; i < k; ++i) std::swap(idx[i], idx[i + size_t(rng.below(int64_t(idx.size() - i)))]);
  size_t best = idx[0];
  for (size_t i = 1; i < k; ++i) {
    const size_t c = idx[i];
    const int r = std::min(pop[c]->rung, pop[best]->rung);
    if (rank[c] < rank[best] || (rank[c] == rank[best] && pop[c]->loss_at(r) < pop[best]->loss_at(r))) best = c;
  }
  const TrialRow& parent = *pop[best];
  Genome g = space.parse_genome(parent.genome, "trial " + std::to_string(parent.number));
  // A child the study already holds would take a slot without news and
  // enter the population as a second copy of a member (8 of 56 mutants in
  // three 24-trial studies were such copies); one outside the budgets
  // would be pruned. With a pricer, the parent is mutated again, up to
  // kMutationDraws times, until the child is new and feasible; after that
  // the last child goes to the runner, which reuses or prunes it.
  for (int draw = 0; draw < kMutationDraws; ++draw) {
    p.genome = space.mutate(g, rng);
    if (space.width_mode == SearchSpace::Width::Fit) p.genome.d_model = 0;
    if (!price || (*price)(p.genome)) break;
  }
  p.origin = "mutation";
  p.parent = parent.number;
  return p;
}

}  // namespace flashnas
