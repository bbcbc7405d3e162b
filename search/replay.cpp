#include "search/replay.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "common/error.h"
#include "search/evolution.h"
#include "search/fidelity.h"
#include "search/pareto.h"
#include "search/rng.h"

namespace flashnas {
namespace fs = std::filesystem;

ReplayTable ReplayTable::load(const fs::path& csv) {
  ReplayTable t;
  t.table = read_bench_table(csv);
  const fs::path meta_path = csv.string() + ".json";
  if (!fs::exists(meta_path)) {
    throw InputError("--table " + csv.string() + ": " + meta_path.string() +
                     " is missing; it holds the config the table was made with (flashnas bench-table --csv writes both)");
  }
  const json meta = load_json_file(meta_path);
  if (!meta.contains("config")) throw InputError(meta_path.string() + ": field \"config\" is missing");
  t.cfg = SearchConfig::from_json(meta.at("config"), meta_path.string() + " [config]");
  const Rungs rungs(t.cfg);
  std::vector<int64_t> want;
  for (int r = 0; r < rungs.count(); ++r) want.push_back(rungs.tokens(r));
  if (want != t.table.rungs) {
    throw InputError("--table " + csv.string() + ": its loss_<tokens> columns do not match the rungs of the config in " +
                     meta_path.string());
  }
  const size_t genome = t.table.column("genome"), params = t.table.column("params");
  std::vector<size_t> ms_cols;
  for (const auto& b : t.cfg.budgets) ms_cols.push_back(t.table.column(b.name + "_ms"));
  std::vector<std::vector<double>> by_rung;
  for (const int64_t k : t.table.rungs) by_rung.push_back(t.table.losses(k, "--table"));
  for (size_t i = 0; i < t.table.rows.size(); ++i) {
    const auto& row = t.table.rows[i];
    t.genomes.push_back(t.cfg.space.parse_genome(row[genome], csv.string() + ": row " + std::to_string(i + 1)));
    std::vector<double> l, m;
    for (const auto& r : by_rung) l.push_back(r[i]);
    for (const size_t c : ms_cols) m.push_back(row[c].empty() ? NAN : std::strtod(row[c].c_str(), nullptr));
    t.loss.push_back(l);
    t.ms.push_back(m);
    t.params.push_back(std::strtoll(row[params].c_str(), nullptr, 10));
  }
  if (t.genomes.empty()) throw InputError("--table " + csv.string() + ": the table has no rows");
  return t;
}

void ReplayTable::set_search(const std::vector<std::string>& assignments) {
  if (assignments.empty()) return;
  json doc = cfg.doc;
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--set \"" + a + "\": expected KEY=VALUE, e.g. population=4");
    const std::string key = a.substr(0, eq), text = a.substr(eq + 1);
    json v;
    try {
      v = json::parse(text);
    } catch (const json::exception&) {
      v = text;
    }
    doc["search"][key] = v;
  }
  cfg = SearchConfig::from_json(doc, "--set");
}

int64_t default_replay_budget(const ReplayTable& t) { return 200 * Rungs(t.cfg).tokens(0); }

double ReplayRun::best_at(int64_t tokens) const {
  double b = NAN;
  for (const auto& p : curve) {
    if (p.tokens > tokens) break;
    b = p.best;
  }
  return b;
}

namespace {

// Genes that differ (stage genes, layers, width).
int genome_distance(const Genome& a, const Genome& b) {
  int d = a.d_model != b.d_model ? 1 : 0;
  const size_t ns = std::max(a.stages.size(), b.stages.size());
  for (size_t i = 0; i < ns; ++i) {
    if (i >= a.stages.size() || i >= b.stages.size()) {
      d += 5;
      continue;
    }
    const StageGene &x = a.stages[i], &y = b.stages[i];
    d += (x.m1 != y.m1) + (x.m2 != y.m2) + (x.ratio != y.ratio) + (x.ffn != y.ffn) + (x.blocks != y.blocks);
  }
  const size_t nl = std::max(a.layers.size(), b.layers.size());
  for (size_t i = 0; i < nl; ++i) {
    if (i >= a.layers.size() || i >= b.layers.size()) {
      d += 2;
      continue;
    }
    d += (a.layers[i].mixer != b.layers[i].mixer) + (a.layers[i].ffn != b.layers[i].ffn);
  }
  return d;
}

// The algorithm without "+asha"; InputError unless it is a replayable one.
std::string replay_base(const std::string& algorithm) {
  const bool asha = algorithm.size() > 5 && algorithm.ends_with("+asha");
  const std::string base = asha ? algorithm.substr(0, algorithm.size() - 5) : algorithm;
  if (base != "random" && base != "evolution" && base != "guided") {
    throw InputError("--algorithm: \"" + algorithm +
                     "\" is not one of random, evolution, guided, random+asha, evolution+asha, guided+asha");
  }
  return base;
}

}  // namespace

void check_replay_algorithm(const std::string& algorithm) { replay_base(algorithm); }

ReplayRun replay(const ReplayTable& t, const ReplayOptions& o) {
  const std::string base = replay_base(o.algorithm);
  const bool asha = base != o.algorithm;
  SearchConfig cfg = t.cfg;
  cfg.search.algorithm = base;
  cfg.search.seed = o.seed;
  cfg.search.promote_all = false;
  cfg.search.eta = o.eta;
  cfg.search.finalists = 0;  // a replay's rules are its options' (asynchronous promotions to every rung)
  const int top = int(t.table.rungs.size()) - 1;
  if (asha) {
    cfg.search.fidelities = t.table.rungs;
  } else {
    cfg.search.fidelities.clear();
    cfg.recipe.tokens = t.table.rungs.back();  // straight to the top rung (the same wsd run)
  }
  const Rungs rungs(cfg);
  const int64_t budget = o.budget_tokens > 0 ? o.budget_tokens : default_replay_budget(t);
  if (budget < rungs.cost(0)) {
    throw InputError("--budget-tokens: " + std::to_string(budget) + " is less than one run of " + o.algorithm + " (" +
                     std::to_string(rungs.cost(0)) + " tokens)");
  }
  cfg.search.token_budget = budget;
  // The loss a run of rung r (of this replay's rungs) finds in the table.
  auto table_loss = [&](size_t row, int r) { return t.loss[row][size_t(asha ? r : top)]; };

  ReplayRun run;
  run.algorithm = o.algorithm;
  run.seed = o.seed;
  run.budget_tokens = budget;
  run.per_rung.assign(size_t(rungs.count()), 0);
  std::vector<TrialRow> trials;
  std::vector<size_t> row_of;  // per trial
  std::vector<bool> used(t.genomes.size(), false);
  size_t unused = t.genomes.size();
  Rng rng(o.seed ^ 0x5e1ec7ab1e5eedULL);
  double best = NAN;
  // The nearest row not yet evaluated (ties drawn at random), or none.
  auto nearest_unused = [&](const Genome& g) -> std::optional<size_t> {
    std::vector<size_t> pick;
    int nearest = std::numeric_limits<int>::max();
    for (size_t i = 0; i < used.size(); ++i) {
      if (used[i]) continue;
      const int d = genome_distance(g, t.genomes[i]);
      if (d < nearest) pick.clear();
      if (d <= nearest) {
        nearest = d;
        pick.push_back(i);
      }
    }
    if (pick.empty()) return std::nullopt;
    return rng.pick(pick);
  };
  // The guided proposer's pool, mapped onto the table like every proposal.
  const CandidateFn candidate = [&](const Genome& g) -> std::optional<Candidate> {
    const auto row = nearest_unused(g);
    if (!row) return std::nullopt;
    return Candidate{t.genomes[*row], t.params[*row], t.ms[*row]};
  };
  auto finish_run = [&](TrialRow& tr, int r, double loss) {
    RungRow x;
    x.rung = r;
    x.tokens = rungs.tokens(r);
    x.status = std::isfinite(loss) ? "done" : "failed";
    x.loss = loss;
    tr.rungs.push_back(x);
    if (std::isfinite(loss)) {
      tr.rung = r;
      tr.loss = loss;
      ++run.per_rung[size_t(r)];
      if (r == rungs.top() && !(loss >= best)) best = loss;
    }
    run.spent_tokens = tokens_committed(rungs, trials);
    run.curve.push_back({run.spent_tokens, best});
  };
  for (;;) {
    const int64_t committed = tokens_committed(rungs, trials);
    if (rungs.multi()) {
      const auto p = next_promotion(cfg, rungs, trials);
      if (p && committed + rungs.cost(p->rung) <= budget) {
        TrialRow& tr = trials[size_t(p->number)];
        run.events.emplace_back(row_of[size_t(p->number)], p->rung);
        finish_run(tr, p->rung, table_loss(row_of[size_t(p->number)], p->rung));
        continue;
      }
    }
    if (committed + rungs.cost(0) > budget || unused == 0) break;
    const int64_t slot = int64_t(trials.size());
    const auto prop = propose(cfg, slot, 0, trials, rng, &candidate);
    if (!prop) throw Error("replay: the proposer waited, but every earlier run has finished");
    // Map the proposal onto a row not yet evaluated.
    size_t row = 0;
    if (prop->origin == "random") {
      std::vector<size_t> pick;
      for (size_t i = 0; i < used.size(); ++i) {
        if (!used[i]) pick.push_back(i);
      }
      row = rng.pick(pick);
    } else {
      row = *nearest_unused(prop->genome);
    }
    used[row] = true;
    --unused;
    TrialRow tr;
    tr.id = slot + 1;
    tr.number = slot;
    tr.slot = slot;
    tr.cycle = prop->cycle;
    tr.parent = prop->parent;
    tr.origin = prop->origin;
    tr.genome = cfg.space.genome_text(t.genomes[row]);
    tr.d_model = t.genomes[row].d_model;
    tr.params = t.params[row];
    for (size_t b = 0; b < cfg.budgets.size(); ++b) tr.predicted[cfg.budgets[b].name] = t.ms[row][b];
    tr.latency_ms = t.ms[row].empty() ? NAN : t.ms[row][0];
    const double loss = table_loss(row, 0);
    tr.status = std::isfinite(loss) ? "done" : "failed";
    trials.push_back(tr);
    row_of.push_back(row);
    run.rows.push_back(row);
    ++run.evaluated;
    run.events.emplace_back(row, 0);
    finish_run(trials.back(), 0, loss);
  }
  run.final_best = best;
  // Hypervolume of the top-rung trials per budget.
  double worst = -INFINITY;
  for (const auto& l : t.loss) {
    if (std::isfinite(l[size_t(top)])) worst = std::max(worst, l[size_t(top)]);
  }
  for (size_t b = 0; b < cfg.budgets.size(); ++b) {
    std::vector<ParetoPoint> pts;
    for (size_t i = 0; i < trials.size(); ++i) {
      const double l = trials[i].loss_at(rungs.top());
      if (std::isfinite(l)) pts.push_back({t.ms[row_of[i]][b], l, int64_t(i)});
    }
    run.hypervolume.push_back(hypervolume(pts, cfg.budgets[b].limit_ms(), worst));
  }
  return run;
}

std::vector<std::vector<ReplayRun>> replay_all(const ReplayTable& t, const std::vector<std::string>& algorithms, int seeds,
                                               uint64_t first_seed, const ReplayOptions& common,
                                               const std::function<void(int64_t, int64_t, const ReplayRun&)>& progress) {
  for (const auto& a : algorithms) check_replay_algorithm(a);  // every name before the first replay
  const int64_t total = int64_t(algorithms.size()) * seeds;
  int64_t done = 0;
  std::vector<std::vector<ReplayRun>> runs;
  for (const auto& a : algorithms) {
    std::vector<ReplayRun> per_seed;
    for (int i = 0; i < seeds; ++i) {
      ReplayOptions ro = common;
      ro.algorithm = a;
      ro.seed = first_seed + uint64_t(i);
      per_seed.push_back(replay(t, ro));
      if (progress) progress(++done, total, per_seed.back());
    }
    runs.push_back(std::move(per_seed));
  }
  return runs;
}

}  // namespace flashnas
