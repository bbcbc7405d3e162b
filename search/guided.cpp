#include "search/guided.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "search/arch_features.h"
#include "search/fidelity.h"
#include "search/pareto.h"
#include "search/surrogate.h"

namespace flashnas {
namespace {

// The features of a stored trial, nullopt when it was never priced.
std::optional<std::vector<double>> trial_features(const SearchConfig& cfg, const TrialRow& t) {
  if (t.genome.empty()) return std::nullopt;
  std::vector<double> ms;
  for (const auto& b : cfg.budgets) {
    if (!t.predicted.contains(b.name) || !t.predicted.at(b.name).is_number()) return std::nullopt;
    ms.push_back(t.predicted.at(b.name).get<double>());
    if (!(ms.back() > 0)) return std::nullopt;
  }
  const Genome g = cfg.space.parse_genome(t.genome, "trial " + std::to_string(t.number));
  return arch_features(cfg.space, g, t.params, ms);
}

// With rungs the last feature is the rung's tokens, log relative to the top
// rung. Predictions are made at predict_rung().
std::vector<double> at_rung(std::vector<double> f, const Rungs& rungs, int r) {
  if (rungs.multi()) f.push_back(std::log(double(rungs.tokens(r)) / double(rungs.tokens(rungs.top()))));
  return f;
}

// The rung whose loss ranks parents and the pool ([search] predict_at).
int predict_rung(const SearchSettings& s, const Rungs& rungs) {
  if (s.predict_at != "top") return 0;
  return std::max(0, rungs.top() - (s.finalists > 0 ? 1 : 0));
}

}  // namespace

std::optional<Proposal> propose_guided(const SearchConfig& cfg, const std::vector<TrialRow>& trials, Rng& rng,
                                       const CandidateFn& price) {
  const SearchSpace& space = cfg.space;
  const SearchSettings& s = cfg.search;
  const Rungs rungs(cfg);
  const int at = predict_rung(s, rungs);

  // 1. The training set: every finished run; in-flight runs for the believer.
  Matrix x, pending_x;
  std::vector<double> y;
  std::vector<const TrialRow*> trained;
  std::vector<std::vector<double>> trained_f;
  for (const auto& t : trials) {
    if (!t.slot || t.reused_from) continue;
    const bool in_flight = t.status == "running" || t.status == "pending";
    if (t.status != "done" && !in_flight) continue;
    const auto f = trial_features(cfg, t);
    if (!f) continue;
    if (in_flight) {
      pending_x.push_back(at_rung(*f, rungs, 0));
      continue;
    }
    bool any = false;
    for (int r = 0; r <= rungs.top(); ++r) {
      const double l = t.loss_at(r);
      if (std::isfinite(l)) {
        x.push_back(at_rung(*f, rungs, r));
        y.push_back(l);
        any = true;
      }
      const RungRow* rr = t.rung_row(r);
      if (rr && rr->status == "running") pending_x.push_back(at_rung(*f, rungs, r));
    }
    if (any) {
      trained.push_back(&t);
      trained_f.push_back(at_rung(*f, rungs, at));
    }
  }
  Proposal p;
  if (trained.size() < 3) {
    // Too little to model (e.g. every worker still busy with the first population).
    p.genome = space.random(rng);
    p.origin = "random";
    return p;
  }
  GaussianProcess gp;
  const auto take = [&](const std::vector<size_t>& rows, Matrix* xs, std::vector<double>* ys) {
    for (const size_t i : rows) xs->push_back(x[i]), ys->push_back(y[i]);
  };
  {
    Matrix fx, cx;
    std::vector<double> fy, cy;
    const std::vector<size_t> fit_rows = surrogate_rows(y, kSurrogateFitRows);
    take(fit_rows, &fx, &fy);
    gp.fit(fx, fy);
    if (fit_rows.size() < y.size()) {
      take(surrogate_rows(y, kSurrogatePosteriorRows), &cx, &cy);
      gp.recondition(cx, cy);
    }
  }
  if (!pending_x.empty()) gp.condition_on(pending_x, gp.predict(pending_x, false).mean);
  const std::vector<double> member_mean = gp.predict(trained_f, false).mean;

  // 2. Parents: the best members by predicted loss (and latency).
  std::vector<size_t> order(trained.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<int> rank(trained.size(), 0);
  if (s.objective == "pareto") {
    std::vector<std::pair<double, double>> pts;
    for (size_t i = 0; i < trained.size(); ++i) pts.emplace_back(trained[i]->latency_ms, member_mean[i]);
    rank = pareto_ranks(pts);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rank[a] != rank[b] ? rank[a] < rank[b] : member_mean[a] < member_mean[b];
  });
  std::vector<size_t> parents;
  for (const size_t i : order) {
    if (parents.size() < size_t(s.population) && (rank[i] <= 1 || parents.size() < 3)) parents.push_back(i);
  }

  // 3. The pool: mutants of the parents and fresh draws, priced.
  std::set<std::string> seen;
  for (const auto& t : trials) seen.insert(t.genome);
  std::vector<Candidate> pool;
  std::vector<std::optional<int64_t>> pool_parent;
  for (int i = 0; i < 4 * s.pool && int(pool.size()) < s.pool; ++i) {
    Genome g;
    std::optional<int64_t> parent;
    if (i % 2 == 0) {
      const TrialRow& t = *trained[parents[size_t(rng.below(int64_t(parents.size())))]];
      g = space.mutate(space.parse_genome(t.genome, "trial " + std::to_string(t.number)), rng);
      if (rng.uniform() < 0.5) g = space.mutate(g, rng);
      if (space.width_mode == SearchSpace::Width::Fit) g.d_model = 0;
      parent = t.number;
    } else {
      g = space.random(rng);
    }
    auto c = price(g);
    if (!c) continue;
    if (!seen.insert(space.genome_text(c->genome)).second) continue;
    pool.push_back(std::move(*c));
    pool_parent.push_back(parent);
  }
  if (pool.empty()) {
    p.genome = space.random(rng);
    p.origin = "random";
    return p;
  }

  // 4. The optimistic improvement at that rung: reference minus (mean - kappa sd).
  Matrix px;
  for (const auto& c : pool) px.push_back(at_rung(arch_features(space, c.genome, c.params, c.ms), rungs, at));
  const GpPrediction pred = gp.predict(px);
  const double best_all = *std::min_element(member_mean.begin(), member_mean.end());
  const double worst_all = *std::max_element(member_mean.begin(), member_mean.end());
  size_t pick = 0;
  double best_score = -INFINITY;
  for (size_t i = 0; i < pool.size(); ++i) {
    double ref = best_all;
    if (s.objective == "pareto") {
      ref = INFINITY;
      for (size_t j = 0; j < trained.size(); ++j) {
        if (trained[j]->latency_ms <= pool[i].ms.at(0)) ref = std::min(ref, member_mean[j]);
      }
      if (!std::isfinite(ref)) ref = worst_all;  // faster than every member: any loss below the worst helps
    }
    const double score = ref - (pred.mean[i] - s.kappa * pred.sd[i]);
    if (score > best_score) {
      best_score = score;
      pick = i;
    }
  }
  p.genome = pool[pick].genome;
  if (space.width_mode == SearchSpace::Width::Fit) p.genome.d_model = 0;
  p.origin = "guided";
  p.parent = pool_parent[pick];
  return p;
}

}  // namespace flashnas
