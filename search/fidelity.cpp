#include "search/fidelity.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace flashnas {

Rungs::Rungs(const SearchConfig& cfg) {
  if (cfg.search.fidelities.empty()) {
    recipes_.push_back(cfg.recipe);
    return;
  }
  for (const int64_t t : cfg.search.fidelities) {
    TrainRecipe r = cfg.recipe;  // wsd with a fixed warmup (search/config.cpp)
    r.tokens = t;
    recipes_.push_back(r);
  }
}

int64_t Rungs::tokens(int r) const {
  const TrainRecipe& x = recipe(r);
  return x.steps() * x.tokens_per_step();
}

int64_t Rungs::cost(int r) const {
  if (r == 0) return tokens(0);
  const TrainRecipe& prev = recipe(r - 1);
  return tokens(r) - prev.stable_end_step() * prev.tokens_per_step();
}

std::optional<Promotion> next_promotion(const SearchConfig& cfg, const Rungs& rungs, const std::vector<TrialRow>& trials,
                                        bool finals_open) {
  const bool finals = cfg.search.finalists > 0 && !cfg.search.promote_all;
  for (int r = rungs.top() - 1; r >= 0; --r) {
    const bool to_finals = finals && r + 1 == rungs.top();
    if (to_finals && !finals_open) continue;
    std::vector<const TrialRow*> done;
    for (const auto& t : trials) {
      if (t.slot && !t.reused_from && t.status == "done" && std::isfinite(t.loss_at(r))) done.push_back(&t);
    }
    std::sort(done.begin(), done.end(), [r](const TrialRow* a, const TrialRow* b) {
      const double la = a->loss_at(r), lb = b->loss_at(r);
      return la < lb || (la == lb && a->number < b->number);
    });
    const size_t k = cfg.search.promote_all ? done.size()
                     : to_finals ? std::min(done.size(), static_cast<size_t>(cfg.search.finalists))
                                 : static_cast<size_t>(std::floor(static_cast<double>(done.size()) / cfg.search.eta));
    for (size_t i = 0; i < k; ++i) {
      if (!done[i]->rung_row(r + 1)) return Promotion{done[i]->id, done[i]->number, r + 1};
    }
  }
  return std::nullopt;
}

int64_t finalists_reserve(const SearchConfig& cfg, const Rungs& rungs) {
  if (cfg.search.finalists <= 0 || cfg.search.promote_all || !rungs.multi()) return 0;
  return int64_t(cfg.search.finalists) * rungs.cost(rungs.top());
}

int64_t tokens_committed(const Rungs& rungs, const std::vector<TrialRow>& trials) {
  int64_t sum = 0;
  for (const auto& t : trials) {
    if (!t.slot || t.reused_from || t.status == "pruned") continue;
    sum += rungs.cost(0);
    for (const auto& x : t.rungs) {
      if (x.rung >= 1 && x.rung < rungs.count()) sum += rungs.cost(x.rung);
    }
  }
  return sum;
}

int64_t tokens_finished(const Rungs& rungs, const std::vector<TrialRow>& trials) {
  int64_t sum = 0;
  for (const auto& t : trials) {
    if (!t.slot || t.reused_from) continue;
    if (t.status == "done" || t.status == "failed") sum += rungs.cost(0);
    for (const auto& x : t.rungs) {
      if (x.rung >= 1 && x.rung < rungs.count() && x.status != "running") sum += rungs.cost(x.rung);
    }
  }
  return sum;
}

int64_t tokens_planned(const SearchConfig& cfg, const Rungs& rungs) {
  if (!rungs.multi()) return int64_t(cfg.search.trials) * rungs.cost(0);
  if (!cfg.search.promote_all) return cfg.search.token_budget;
  int64_t per = 0;
  for (int r = 0; r < rungs.count(); ++r) per += rungs.cost(r);
  return int64_t(cfg.search.trials) * per;
}

void check_rungs_fit(const SearchConfig& cfg, const Rungs& rungs, const TokenDataset& data) {
  if (!rungs.multi()) return;
  const int64_t have = data.train().tokens;
  for (int r = 0; r < rungs.count(); ++r) {
    if (rungs.tokens(r) > have) {
      throw InputError(cfg.source + ": field \"search.fidelities[" + std::to_string(r) + "]\": " +
                       std::to_string(rungs.tokens(r)) + " tokens is more than the training split of " +
                       cfg.data.string() + " holds (" + std::to_string(have) +
                       " tokens); a rung must not repeat data: lower it or prepare more data");
    }
  }
  const int64_t reserve = finalists_reserve(cfg, rungs);
  if (reserve > 0 && cfg.search.token_budget - reserve < rungs.cost(0)) {
    throw InputError(cfg.source + ": field \"search.finalists\": " + std::to_string(cfg.search.finalists) +
                     " finalists at the top rung cost " + std::to_string(reserve) + " tokens, which leaves the rungs below " +
                     std::to_string(cfg.search.token_budget - reserve) + " of the token budget's " +
                     std::to_string(cfg.search.token_budget) + ", less than one candidate's " +
                     std::to_string(rungs.cost(0)) + ": raise search.token_budget or lower search.finalists");
  }
}

}  // namespace flashnas
