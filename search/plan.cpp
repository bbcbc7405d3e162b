#include "search/plan.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "common/error.h"
#include "common/format.h"
#include "search/evolution.h"
#include "search/rng.h"
#include "supernet/accounting.h"

namespace flashnas {
std::string study_digest(const std::vector<TrialRow>& trials, const std::string& rng_state) {
  std::string d = rng_state + "\n";
  char buf[160];
  for (const auto& t : trials) {
    std::snprintf(buf, sizeof buf, "%lld %lld %s %.17g %d %lld|", static_cast<long long>(t.id),
                  static_cast<long long>(t.slot.value_or(-1)), t.status.c_str(), t.loss, t.rung,
                  static_cast<long long>(t.reused_from.value_or(-1)));
    d += buf + t.hash;
    for (const auto& r : t.rungs) {
      std::snprintf(buf, sizeof buf, " %d %s %.17g", r.rung, r.status.c_str(), r.loss);
      d += buf;
    }
    d += "\n";
  }
  return d;
}

Plan plan_next(const SearchConfig& cfg, const Rungs& rungs, Pricer& pricer, const std::vector<TrialRow>& trials,
               const std::string& rng_state, const PlanLimits& limits, const std::string& where) {
  Plan plan;
  int64_t trained = 0, slots = 0, in_flight = 0, in_flight_below_top = 0, pending = 0;
  std::map<std::string, const TrialRow*> by_hash;
  for (const auto& t : trials) {
    if (t.status == "pending") ++pending;
    if (!t.slot) continue;
    ++slots;
    if (!t.reused_from) ++trained;
    if (t.status == "running") ++in_flight, ++in_flight_below_top;
    by_hash.emplace(t.hash, &t);
  }
  for (const auto& t : trials) {
    for (const auto& x : t.rungs) {
      if (x.rung > 0 && x.status == "running") {
        ++in_flight;
        if (x.rung < rungs.top()) ++in_flight_below_top;
      }
    }
  }
  // A trial waiting to be claimed is the claim's work (Transaction::Lock::rows), not the proposer's.
  if (pending > 0) {
    plan.wait_reason = "a trial waiting to be claimed";
    return plan;
  }
  const int64_t committed = tokens_committed(rungs, trials);
  const int64_t budget = cfg.search.token_budget;
  const bool capped = rungs.multi() && !cfg.search.promote_all;
  // The rungs below the finalists' spend the budget less their reserve.
  const int64_t below_budget = budget - finalists_reserve(cfg, rungs);
  auto promote = [&](const Promotion& p) {
    for (const auto& t : trials) {
      if (t.id == p.trial_id) plan.trial = t;
    }
    plan.promotion = p;
    plan.kind = Plan::Kind::promote;
    return plan;
  };
  // Multi-fidelity: a promotion first, when one qualifies and the budget allows it.
  if (rungs.multi()) {
    auto p = next_promotion(cfg, rungs, trials);
    if (p && (!capped || committed + rungs.cost(p->rung) <= below_budget)) return promote(*p);
  }
  const bool room_for_new = capped ? committed + rungs.cost(0) <= below_budget && slots < limits.max_slots
                                   : trained < cfg.search.trials && slots < limits.max_slots;
  if (!room_for_new) {
    // Everything below the top rung is done: the finalists' turn.
    if (capped && cfg.search.finalists > 0 && in_flight_below_top == 0) {
      auto p = next_promotion(cfg, rungs, trials, /*finals_open=*/true);
      if (p && committed + rungs.cost(p->rung) <= budget) return promote(*p);
    }
    if (in_flight > 0) {
      plan.wait_reason = "the study's last trials in flight";
      return plan;
    }
    plan.kind = Plan::Kind::stop;
    if (capped) {
      plan.stop_reason = "the token budget is spent: " + std::to_string(committed) + " of " + std::to_string(budget) +
                         " tokens committed, " + std::to_string(trained) + " architectures";
    } else if (trained < cfg.search.trials) {
      plan.stop_reason = std::to_string(slots) + " candidates drawn but only " + std::to_string(trained) +
                         " new architectures: the space is nearly exhausted";
    }
    return plan;
  }
  Rng rng = Rng::from_text(rng_state, where + ", column rng_state");
  // The guided proposer's pool: LUT-priced, new to the study.
  const CandidateFn candidate = [&](const Genome& g) -> std::optional<Candidate> {
    Priced p = pricer.price(g);
    if (!p.arch || by_hash.count(p.arch->hash())) return std::nullopt;
    return Candidate{p.genome, account(*p.arch, 0, 4).params_total, p.ms};
  };
  double best_ms = INFINITY;
  std::string best_reason;
  for (int attempt = 0; attempt < cfg.search.max_attempts; ++attempt) {
    auto prop = propose(cfg, slots, attempt, trials, rng, &candidate);
    if (!prop) {
      plan = Plan{};
      plan.wait_reason = "the previous cycle's trials in flight";
      return plan;
    }
    Priced p = pricer.price(prop->genome);
    TrialRow t;
    t.cycle = prop->cycle;
    t.origin = prop->origin;
    t.parent = prop->parent;
    t.genome = cfg.space.genome_text(p.genome);
    t.d_model = p.genome.d_model;
    for (size_t i = 0; i < cfg.budgets.size(); ++i) t.predicted[cfg.budgets[i].name] = p.ms[i];
    t.latency_ms = p.ms.at(0);
    if (!p.arch) {
      t.arch = p.priced.to_json().dump();
      t.hash = p.priced.hash();
      t.params = account(p.priced, 0, 4).params_total;
      t.status = "pruned";
      t.reason = p.reason;
      plan.inserts.push_back(t);
      ++plan.pruned;
      if (p.ms.at(0) < best_ms) {
        best_ms = p.ms.at(0);
        best_reason = t.genome + ": " + p.reason;
      }
      continue;
    }
    t.arch = p.arch->to_json().dump();
    t.hash = p.arch->hash();
    t.params = account(*p.arch, 0, 4).params_total;
    t.slot = slots;
    plan.kind = Plan::Kind::train;
    plan.rng_state = rng.state_text();
    auto dup = by_hash.find(t.hash);
    if (dup == by_hash.end()) {
      t.status = "running";
      plan.inserts.push_back(t);
      plan.claims = true;
      return plan;
    }
    const TrialRow& d = *dup->second;
    if (d.status == "pending" || d.status == "running") {
      // Its result is not known yet: wait for it, so that the slot gets the
      // same result whichever worker finishes first.
      plan = Plan{};
      plan.wait_reason = "trial " + std::to_string(d.number) + ", which this draw repeats";
      return plan;
    }
    t.reused_from = d.reused_from ? *d.reused_from : d.number;
    t.status = d.status;
    t.loss = d.loss;
    t.bpb = d.bpb;
    t.reason = d.status == "failed" ? "same architecture as trial " + std::to_string(*t.reused_from) + ": " + d.reason : "";
    plan.inserts.push_back(t);
    ++plan.reused;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4f", t.loss);
    plan.log.push_back("slot " + std::to_string(slots) + ": " + t.genome + " is trial " + std::to_string(*t.reused_from) +
                       " again (" + format_ms_list(p.ms) + ", loss " + buf + "), result reused");
    return plan;
  }
  if (slots == 0) {
    throw InputError(cfg.source + ": no architecture in " + std::to_string(cfg.search.max_attempts) +
                     " draws meets the budgets and constraints; the fastest was " + best_reason +
                     ". Loosen the budgets or add smaller widths/structures to the space");
  }
  plan.kind = Plan::Kind::stop;
  plan.stop_reason = "no new feasible architecture in " + std::to_string(cfg.search.max_attempts) + " draws";
  plan.rng_state = rng.state_text();
  return plan;
}

}  // namespace flashnas
