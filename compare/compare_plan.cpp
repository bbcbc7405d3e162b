// The plan of a comparison: options checked, contenders assembled and sized,
// recipes fixed (compare/compare_plan.h).
#include "compare/compare_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "common/device.h"
#include "common/error.h"
#include "common/files.h"
#include "common/format.h"
#include "common/threads.h"
#include "profiler/lut_table.h"
#include "search/fidelity.h"
#include "search/frontier.h"
#include "search/pricer.h"
#include "search/runner.h"
#include "supernet/accounting.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

using Log = std::function<void(const std::string&)>;

Contender trial_contender(const TrialRow& t, const std::string& label, const std::string& kind, const std::string& note,
                          double ms) {
  Contender c;
  c.label = label;
  c.kind = kind;
  c.description = t.genome;
  c.arch = ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"),
                               "trial " + std::to_string(t.number));
  c.arch.name = label + ": " + t.genome;
  c.predicted_ms = ms;
  c.params = t.params;
  c.note = note;
  return c;
}

}  // namespace

namespace compare_detail {

std::string lr_text(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", lr);
  return buf;
}

namespace {

// The options' own checks (before anything is read).
void check_options(const CompareOptions& o) {
  check_path_name(o.name, "--name");
  if (o.seeds < 1) throw InputError("--seeds: must be >= 1, got " + std::to_string(o.seeds));
  if (o.rounds < 1) throw InputError("--rounds: must be >= 1, got " + std::to_string(o.rounds));
  if (o.tokens < 0) throw InputError("--tokens: must be > 0 (0: 16x the study's top rung)");
  if (o.lr_tokens < 0) throw InputError("--lr-tokens: must be > 0 (0: the study's top rung)");
  if (o.eval_batches < 1) throw InputError("--eval-batches: must be >= 1, got " + std::to_string(o.eval_batches));
  if (!(o.min_seconds > 0)) throw InputError("--min-seconds: must be > 0");
  if (o.lr && !(*o.lr > 0)) throw InputError("--lr: must be > 0");
  if (o.lr && !o.lr_grid.empty()) throw InputError("--lr and --lr-grid: give one rate for all, or a grid, not both");
  for (double v : o.lr_grid) {
    if (!(v > 0)) throw InputError("--lr-grid: every rate must be > 0, got " + std::to_string(v));
  }
  if (o.schedule != "cosine" && o.schedule != "wsd") {
    throw InputError("--schedule: must be cosine or wsd, got \"" + o.schedule + "\"");
  }
  checked_threads(o.threads, "--threads");
  if (!database_exists(o.db.string())) throw InputError("--db: " + o.db.string() + ": no such database");
  if (o.lr_extend < 0) throw InputError("--lr-extend: must be >= 0, got " + std::to_string(o.lr_extend));
}

// What the study and the options bring to every budget: its best trial and
// frontier, the user's baselines and the rival studies' picks.
struct Sources {
  FrontierReport rep;
  std::vector<ArchSpec> user;
  std::vector<std::pair<std::string, TrialRow>> rivals;
};

// One budget's contenders: the picks, the rivals' picks, the baselines sized
// to it and the user's designs, each architecture once (but for a baseline
// that is a pick's own architecture: kept, marked, judged as a tie).
std::vector<Contender> budget_contenders(const CompareOptions& o, const Plan& p, const Sources& src, size_t k,
                                         Pricer& pricer, const Log& log) {
  const SearchConfig& cfg = p.cfg;
  const FrontierReport& rep = src.rep;
  const TrialRow* best = rep.best();
  const auto& user = src.user;
  const auto& rivals = src.rivals;
  const Budget& b = p.budgets[k];
  const int bi = p.budget_index[k];
  auto price = [&](const ArchSpec& a) { return pricer.latencies(a).at(size_t(bi)); };
  std::vector<Contender> cs;
  std::set<std::string> seen;
  // A design seen before is left out, except a baseline or user design that
  // is a pick's architecture: it stays, marked, so the verdict shows that
  // the pick ties with it rather than leaving it out of the judgement.
  auto push = [&](Contender c) {
    if (seen.insert(c.arch.hash()).second) {
      cs.push_back(std::move(c));
      return;
    }
    for (const auto& e : cs) {
      if (e.arch.hash() == c.arch.hash() && e.kind == "pick" && c.kind != "pick") {
        c.note += std::string(c.note.empty() ? "" : "; ") + "the same architecture as " + e.label;
        log("compare: " + b.name + ": " + c.label + " is the same architecture as " + e.label + "; kept, judged as a tie");
        cs.push_back(std::move(c));
        return;
      }
    }
  };
  // Picks: the best by the study's objective, and the largest on this budget's frontier.
  push(trial_contender(*best, "pick-best", "pick", "trial " + std::to_string(best->number) + ", the study's best",
                       best->predicted.value(b.name, NAN)));
  const TrialRow* largest = nullptr;
  for (const auto& f : rep.budgets) {
    if (f.budget.name != b.name) continue;
    for (int64_t n : f.front) {
      const TrialRow* t = rep.by_number(n);
      if (t && (!largest || t->params > largest->params)) largest = t;
    }
  }
  if (largest && largest->hash != best->hash) {
    push(trial_contender(*largest, "pick-largest", "pick",
                         "trial " + std::to_string(largest->number) + ", the largest on the frontier",
                         largest->predicted.value(b.name, NAN)));
  }
  for (const auto& [name, t] : rivals) {
    push(trial_contender(t, name + "-best", "rival", "trial " + std::to_string(t.number) + " of study " + name,
                         price(ArchSpec::from_json(parse_json(t.arch, "trial arch"), "trial " + std::to_string(t.number)))));
  }
  std::vector<std::string> skipped;
  // Every budget of the study binds (its trials meet them all), compared or not.
  auto meets_all = [&](const ArchSpec& a) { return over_budget(cfg.budgets, pricer.latencies(a)).empty(); };
  for (auto& c : size_baselines(cfg.space, b, price, o.sizing, &skipped, meets_all)) push(std::move(c));
  for (const auto& line : skipped) log("compare: " + line);
  for (size_t i = 0; i < user.size(); ++i) {
    Contender c;
    c.label = "user-" + o.baselines[i].stem().string();
    c.kind = "user";
    c.arch = user[i];
    c.description = user[i].name.empty() ? o.baselines[i].filename().string() : user[i].name;
    c.params = account(user[i], 0, 4).params_total;
    c.note = o.baselines[i].string();
    try {
      c.predicted_ms = price(user[i]);
    } catch (const Error& e) {
      c.note += "; not priced: " + std::string(e.what());
    }
    const size_t before = cs.size();
    const std::string hash = c.arch.hash();
    push(std::move(c));
    if (cs.size() == before) {
      const auto same = std::find_if(cs.begin(), cs.end(), [&](const Contender& e) { return e.arch.hash() == hash; });
      log("compare: " + b.name + ": --baseline " + o.baselines[i].string() + " is the same architecture as " + same->label +
          "; left out");
    }
  }
  return cs;
}

// --contender: pick-best and the named contenders; the rest are left out,
// with a log line naming them.
std::vector<Contender> keep_only(std::vector<Contender> cs, const std::vector<std::string>& only,
                                 const std::string& budget, const Log& log) {
  std::vector<Contender> kept;
  std::string left;
  for (auto& c : cs) {
    if (c.label == "pick-best" || std::find(only.begin(), only.end(), c.label) != only.end()) {
      kept.push_back(std::move(c));
    } else {
      left += (left.empty() ? "" : ", ") + c.label;
    }
  }
  if (!left.empty()) log("compare: " + budget + ": left out by --contender: " + left);
  return kept;
}

// The final runs' recipe (the study's, retrained longer on `schedule`), the
// grid runs' recipe and the learning rates to try.
void set_recipes(Plan& p, const CompareOptions& o) {
  const SearchConfig& cfg = p.cfg;
  const Rungs rungs(cfg);
  const int64_t top = rungs.tokens(rungs.top());
  p.recipe = cfg.recipe;
  p.recipe.tokens = o.tokens > 0 ? o.tokens : 16 * top;
  p.recipe.schedule = o.schedule;
  p.recipe.eval_batches = o.eval_batches;
  p.recipe.eval_interval = std::max<int64_t>(1, (p.recipe.steps() + 7) / 8);  // 8 checkpoints a run
  p.recipe.threads = 0;  // set per process; not part of the recipe's identity
  p.lr_recipe = p.recipe;
  p.lr_recipe.tokens = o.lr_tokens > 0 ? o.lr_tokens : top;
  // A grid run is short: evaluated once, at its end (an evaluation of
  // eval_batches costs about a third of a training step per batch, so four
  // of them cost more than the run's training itself); killed, it starts again.
  p.lr_recipe.eval_interval = 0;
  if (o.lr) {
    p.grid = {*o.lr};
  } else if (!o.lr_grid.empty()) {
    p.grid = o.lr_grid;
  } else {
    p.grid = {cfg.recipe.lr / 3, cfg.recipe.lr, cfg.recipe.lr * 3};
  }
  p.lr_extend = o.lr_extend;
  std::sort(p.grid.begin(), p.grid.end());
  p.grid.erase(std::unique(p.grid.begin(), p.grid.end()), p.grid.end());
  p.recipe.validate();
  p.lr_recipe.validate();
}

// What the comparison is, stored and hashed with it: recipes, rates, seeds,
// measurement, sizing, the contenders per budget, data and device.
nlohmann::json plan_config(const Plan& p, const CompareOptions& o) {
  json budgets = json::array();
  for (size_t k = 0; k < p.budgets.size(); ++k) {
    json cs = json::array();
    for (const auto& c : p.contenders[k]) cs.push_back({{"label", c.label}, {"arch", c.arch.hash()}});
    budgets.push_back({{"budget", p.budgets[k].to_json()}, {"contenders", cs}});
  }
  json c = {{"recipe", p.recipe.to_json()},
            {"lr_mode", p.grid.size() > 1 ? "grid" : "one rate for all"},
            {"lr_grid", p.grid},
            {"lr_extend", p.grid.size() > 1 ? p.lr_extend : 0},
            {"lr_recipe", p.grid.size() > 1 ? p.lr_recipe.to_json() : json()},
            {"seeds", o.seeds},
            {"rounds", o.rounds},
            {"min_seconds", o.min_seconds},
            {"sizing", {{"aspect", {o.sizing.aspect_min, o.sizing.aspect_max}}, {"near", o.sizing.near_fraction}}},
            {"budgets", budgets},
            {"data", p.cfg.data.string()},
            {"lut_device", p.lut_device.value("fingerprint", "")}};
  // Only when given, so that the comparisons made before --contender keep their identity.
  if (!o.only.empty()) c["only"] = o.only;
  return c;
}

}  // namespace

// Checks the options and builds the plan (reads only).
Plan make_plan(const CompareOptions& o, const Log& log) {
  check_options(o);
  Plan p;
  Sources src;
  src.rep = frontier_report(o.db, o.study);  // InputError naming the study when absent
  const FrontierReport& rep = src.rep;
  p.study = rep.record;
  p.cfg = SearchConfig::from_json(p.study.config, "study \"" + o.study + "\" config");
  const SearchConfig& cfg = p.cfg;
  const TrialRow* best = rep.best();
  if (!best) throw InputError("--study: study \"" + o.study + "\" has no trained trial yet; run the search first");
  for (const auto& name : o.budgets) {
    bool found = false;
    for (const auto& b : cfg.budgets) found = found || b.name == name;
    if (!found) {
      std::string have;
      for (const auto& b : cfg.budgets) have += (have.empty() ? "" : ", ") + b.name;
      throw InputError("--budget: study \"" + o.study + "\" has no budget \"" + name + "\" (it has " + have + ")");
    }
  }
  for (size_t i = 0; i < cfg.budgets.size(); ++i) {
    const auto& b = cfg.budgets[i];
    if (!o.budgets.empty() && std::find(o.budgets.begin(), o.budgets.end(), b.name) == o.budgets.end()) continue;
    p.budgets.push_back(b);
    p.budget_index.push_back(int(i));
  }

  // The study's latency table.
  const fs::path lut_db = o.lut_db.empty() ? o.db : o.lut_db;
  if (!database_exists(lut_db.string())) throw InputError("--lut: " + lut_db.string() + ": no such database");
  LutStore lut(lut_db, Access::read_only);
  p.lut_device = lut.device_info(p.study.lut_device);
  const LutTable table = LutTable::load(lut, p.study.lut_device, cfg.dtype, cfg.runtime);
  if (!table.report.is_null()) p.probe_reference_us = table.report["probe"].value("reference_index_us", 0.0);
  Pricer pricer(cfg, table);

  // User baselines and rival studies: read once, shared by every budget.
  for (const auto& f : o.baselines) {
    ArchSpec a = ArchSpec::load(f);  // InputError naming the file and field
    if (a.vocab_size < cfg.space.vocab_size) {
      throw InputError("--baseline " + f.string() + ": vocab_size " + std::to_string(a.vocab_size) +
                       " is smaller than the study's (" + std::to_string(cfg.space.vocab_size) + ")");
    }
    src.user.push_back(std::move(a));
  }
  for (const auto& s : o.rival_studies) {
    if (s == o.study) throw InputError("--rival-study: \"" + s + "\" is the compared study itself");
    const FrontierReport r = frontier_report(o.db, s);
    const TrialRow* b = r.best();
    if (!b) throw InputError("--rival-study: study \"" + s + "\" has no trained trial yet");
    if (r.record.config.value("space", json()) != p.study.config.value("space", json())) {
      log("compare: note: rival study \"" + s + "\" searched another space; its pick is retrained all the same");
    }
    src.rivals.emplace_back(s, *b);
  }

  std::set<std::string> labels;  // every budget's, for --contender
  for (size_t k = 0; k < p.budgets.size(); ++k) {
    std::vector<Contender> cs = budget_contenders(o, p, src, k, pricer, log);
    for (const auto& c : cs) labels.insert(c.label);
    if (!o.only.empty()) cs = keep_only(std::move(cs), o.only, p.budgets[k].name, log);
    for (const auto& c : cs) p.archs.emplace(c.arch.hash(), c.arch);
    p.contenders.push_back(std::move(cs));
  }
  for (const auto& l : o.only) {
    if (!labels.count(l)) {
      std::string have;
      for (const auto& x : labels) have += (have.empty() ? "" : ", ") + x;
      throw InputError("--contender: no contender is labelled \"" + l + "\" at the compared budget(s) (they are " +
                       have + ")");
    }
  }
  set_recipes(p, o);
  p.config = plan_config(p, o);
  return p;
}

CompareRun pending_run(const std::string& hash, const std::string& phase, const TrainRecipe& r) {
  CompareRun run;
  run.arch_hash = hash;
  run.phase = phase;
  run.lr = r.lr;
  run.seed = int64_t(r.seed);
  run.tokens = r.tokens;
  run.recipe = r.to_json();
  return run;
}

std::string run_dir_name(const CompareRun& r) {
  return r.arch_hash.substr(0, 16) + "-" + r.phase + "-lr" + lr_text(r.lr) + "-seed" + std::to_string(r.seed);
}

// The final runs of every architecture whose grid runs all finished (at the
// rate with the lowest validation loss); with one rate, from the start.
void plan_final_runs(CompareStore& store, int64_t cmp, const Plan& p, int seeds) {
  const auto runs = store.runs(cmp);
  std::map<std::string, std::vector<const CompareRun*>> grid;
  std::set<std::string> has_final;
  for (const auto& r : runs) {
    if (r.phase == "lr") grid[r.arch_hash].push_back(&r);
    if (r.phase == "final") has_final.insert(r.arch_hash);
  }
  for (const auto& [hash, arch] : p.archs) {
    if (has_final.count(hash)) continue;
    double lr = p.grid.front();
    if (p.grid.size() > 1) {
      const auto& g = grid[hash];
      if (g.size() < p.grid.size()) continue;
      bool finished = true;
      double best = INFINITY, lo = INFINITY, hi = 0;
      for (const auto* r : g) {
        finished = finished && (r->status == "done" || r->status == "failed");
        lo = std::min(lo, r->lr);
        hi = std::max(hi, r->lr);
        if (r->status == "done" && r->val_loss < best) {
          best = r->val_loss;
          lr = r->lr;
        }
      }
      if (!finished) continue;
      // The best rate on the grid's edge: one more rate beyond it (the
      // grid's step at that end), up to lr_extend times each way, before
      // the final runs take the best.
      if (std::isfinite(best)) {
        const size_t n = p.grid.size();
        const double up = p.grid[n - 1] / p.grid[n - 2], down = p.grid[1] / p.grid[0];
        std::optional<double> next;
        if (lr == hi && hi < p.grid.back() * std::pow(up, p.lr_extend) * (1 - 1e-9)) {
          next = hi * up;
        } else if (lr == lo && lo > p.grid.front() / std::pow(down, p.lr_extend) * (1 + 1e-9)) {
          next = lo / down;
        }
        if (next) {
          TrainRecipe r = p.lr_recipe;
          r.lr = *next;
          store.add_run(cmp, pending_run(hash, "lr", r));
          continue;
        }
      }
      // Every rate diverged: the lowest is retrained (and fails with its reason if it diverges again).
      if (!std::isfinite(best)) lr = lo;
    }
    Transaction tx(store.db());
    for (int s = 0; s < seeds; ++s) {
      TrainRecipe r = p.recipe;
      r.lr = lr;
      r.seed = p.cfg.recipe.seed + uint64_t(s);
      store.add_run(cmp, pending_run(hash, "final", r));
    }
    tx.commit();
  }
}

Remaining remaining(const std::vector<CompareRun>& runs, const Plan& p, int seeds,
                    const std::function<bool(const CompareRun&)>& reused) {
  Remaining r;
  std::set<std::string> planned;
  for (const auto& x : runs) {
    if (x.phase == "measure") continue;
    if (x.phase == "final") planned.insert(x.arch_hash);
    if (x.status == "done" || x.status == "failed") {
      ++r.done;
    } else {
      ++r.waiting;
      if (!(x.status == "pending" && reused && reused(x))) r.tokens += x.tokens;
    }
  }
  r.unplanned = int64_t(p.archs.size() - planned.size()) * seeds;
  r.tokens += r.unplanned * p.recipe.tokens;
  return r;
}

}  // namespace compare_detail

ComparePlan plan_compare(const CompareOptions& o, const Log& log) {
  const compare_detail::Plan p = compare_detail::make_plan(o, log);
  ComparePlan out;
  out.budgets = p.budgets;
  out.contenders = p.contenders;
  out.architectures = p.archs.size();
  return out;
}

std::string ComparePlan::text() const {
  std::string s;
  char buf[600];
  for (size_t k = 0; k < budgets.size(); ++k) {
    s += budgets[k].describe() + "\n";
    for (const auto& c : contenders[k]) {
      char ms[32] = "-";
      if (c.predicted_ms) std::snprintf(ms, sizeof ms, "%.2f", *c.predicted_ms);
      std::snprintf(buf, sizeof buf, "  %-20s %-8s %10s params %8s ms  %s  (%s)\n", c.label.c_str(), c.kind.c_str(),
                    with_commas(c.params).c_str(), ms, c.description.c_str(), c.note.c_str());
      s += buf;
    }
  }
  s += std::to_string(architectures) + " distinct architectures to retrain\n";
  return s;
}

}  // namespace flashnas
