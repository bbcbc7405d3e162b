#include "search/compare.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "common/device.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/files.h"
#include "common/format.h"
#include "common/stop.h"
#include "common/threads.h"
#include "profiler/lut_table.h"
#include "profiler/measure.h"
#include "profiler/probe.h"
#include "search/fidelity.h"
#include "search/frontier.h"
#include "study/heartbeat.h"
#include "search/pricer.h"
#include "search/runner.h"
#include "supernet/accounting.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

using Log = std::function<void(const std::string&)>;

std::string lr_text(double lr) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", lr);
  return buf;
}

// Everything checked and assembled before anything is written.
struct Plan {
  SearchConfig cfg;
  StudyRow study;
  std::vector<Budget> budgets;                  // the compared budgets, in the study's order
  std::vector<int> budget_index;                // their index in cfg.budgets
  std::vector<std::vector<Contender>> contenders;  // per compared budget
  std::map<std::string, ArchSpec> archs;        // by hash: every distinct architecture
  TrainRecipe recipe;                           // the final runs' recipe, without lr and seed
  TrainRecipe lr_recipe;                        // a grid run's
  std::vector<double> grid;                     // the learning rates tried first (one: no grid)
  int lr_extend = 0;                            // rates added beyond an edge that wins, at most, each way
  json lut_device;                              // the table's device info
  double probe_reference_us = 0;                // the table's machine-speed reference (0: the table has none)
  json config;                                  // what the comparison is (stored, hashed)
};

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

// Checks the options and builds the plan (reads only).
Plan make_plan(const CompareOptions& o, const Log& log) {
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

  Plan p;
  const FrontierReport rep = frontier_report(o.db, o.study);  // InputError naming the study when absent
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
  std::vector<ArchSpec> user;
  for (const auto& f : o.baselines) {
    ArchSpec a = ArchSpec::load(f);  // InputError naming the file and field
    if (a.vocab_size < cfg.space.vocab_size) {
      throw InputError("--baseline " + f.string() + ": vocab_size " + std::to_string(a.vocab_size) +
                       " is smaller than the study's (" + std::to_string(cfg.space.vocab_size) + ")");
    }
    user.push_back(std::move(a));
  }
  std::vector<std::pair<std::string, TrialRow>> rivals;
  for (const auto& s : o.rival_studies) {
    if (s == o.study) throw InputError("--rival-study: \"" + s + "\" is the compared study itself");
    const FrontierReport r = frontier_report(o.db, s);
    const TrialRow* b = r.best();
    if (!b) throw InputError("--rival-study: study \"" + s + "\" has no trained trial yet");
    if (r.record.config.value("space", json()) != p.study.config.value("space", json())) {
      log("compare: note: rival study \"" + s + "\" searched another space; its pick is retrained all the same");
    }
    rivals.emplace_back(s, *b);
  }

  for (size_t k = 0; k < p.budgets.size(); ++k) {
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
    for (auto& c : size_baselines(cfg.space, b, price, o.sizing, &skipped)) push(std::move(c));
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
    for (const auto& c : cs) p.archs.emplace(c.arch.hash(), c.arch);
    p.contenders.push_back(std::move(cs));
  }

  // The recipe: the study's, retrained longer.
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
  if (o.lr_extend < 0) throw InputError("--lr-extend: must be >= 0, got " + std::to_string(o.lr_extend));
  p.lr_extend = o.lr_extend;
  std::sort(p.grid.begin(), p.grid.end());
  p.grid.erase(std::unique(p.grid.begin(), p.grid.end()), p.grid.end());
  p.recipe.validate();
  p.lr_recipe.validate();

  json budgets = json::array();
  for (size_t k = 0; k < p.budgets.size(); ++k) {
    json cs = json::array();
    for (const auto& c : p.contenders[k]) cs.push_back({{"label", c.label}, {"arch", c.arch.hash()}});
    budgets.push_back({{"budget", p.budgets[k].to_json()}, {"contenders", cs}});
  }
  p.config = {{"recipe", p.recipe.to_json()},
              {"lr_mode", p.grid.size() > 1 ? "grid" : "one rate for all"},
              {"lr_grid", p.grid},
              {"lr_extend", p.grid.size() > 1 ? p.lr_extend : 0},
              {"lr_recipe", p.grid.size() > 1 ? p.lr_recipe.to_json() : json()},
              {"seeds", o.seeds},
              {"rounds", o.rounds},
              {"min_seconds", o.min_seconds},
              {"sizing", {{"aspect", {o.sizing.aspect_min, o.sizing.aspect_max}}, {"near", o.sizing.near_fraction}}},
              {"budgets", budgets},
              {"data", cfg.data.string()},
              {"lut_device", p.lut_device.value("fingerprint", "")}};
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

// The training runs still to finish: waiting (pending or running), not
// planned yet (an architecture's final runs wait for its grid), and the
// tokens still to train (a pending run that `reused` says another comparison
// already finished costs none: the ETA counts only what will be trained).
struct Remaining {
  int64_t done = 0, waiting = 0, unplanned = 0, tokens = 0;
};
Remaining remaining(const std::vector<CompareRun>& runs, const Plan& p, int seeds,
                    const std::function<bool(const CompareRun&)>& reused = nullptr) {
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

}  // namespace

ComparePlan plan_compare(const CompareOptions& o, const Log& log) {
  const Plan p = make_plan(o, log);
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

CompareReport run_compare(const CompareOptions& o, const Log& log) {
  using clock = std::chrono::steady_clock;
  const Plan p = make_plan(o, log);
  const SearchConfig& cfg = p.cfg;
  // Training data, as the study trains.
  std::error_code ec;
  if (cfg.data.is_relative() && !fs::exists(cfg.data, ec)) {
    throw InputError("--study: the study's train.data \"" + cfg.data.string() + "\" is a relative path and is not in " +
                     fs::current_path(ec).string() + "; run compare from the folder the search ran in");
  }
  const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed,
                                               "study \"" + o.study + "\" train.data");
  for (const auto& [hash, a] : p.archs) {
    TrainRecipe r = p.recipe;
    Trainer(a, data.dataset, data.tokenizer, r, fs::path()).check();  // InputError before anything is written
  }
  // Measuring needs this machine to be the table's device.
  const bool measure_here = o.measure && !o.train_only;
  const std::string lut_fp = p.lut_device.value("fingerprint", "");
  const int lut_threads = p.lut_device.value("threads", 0);
  if (measure_here) {
    const int keep = at::get_num_threads();
    if (lut_threads > 0) at::set_num_threads(lut_threads);
    const std::string here = describe_device(parse_device(p.lut_device.value("device", "cpu"), "the table's device")).fingerprint();
    at::set_num_threads(keep);
    if (here != lut_fp && !o.any_device) {
      throw InputError("compare: this machine (" + here + ") is not the latency table's device (" + lut_fp +
                       "); run compare there, or pass --no-measure (train only; the report uses predicted latency), or "
                       "--measure-anywhere (measure here all the same)");
    }
  }
  std::vector<TaskRecord> task_eval;
  if (data.dataset->task() && cfg.task_eval_records > 0) {
    std::vector<int64_t> docs = data.dataset->val_docs();
    docs.resize(std::min<size_t>(docs.size(), size_t(cfg.task_eval_records)));
    task_eval = task_records(*data.file, docs);
  }

  // ---- From here on the comparison is written. ----
  CompareStore store(o.db.string(), Access::read_write);
  store.set_lease_seconds(o.lease_s);
  auto with_db = [&](const std::function<void()>& work) { with_db_retry(store.db(), work, o.db_retry_s, log); };
  ComparisonRow cmp;
  with_db([&] { cmp = store.open(p.study.id, o.name, p.config); });
  with_db([&] {
    for (size_t k = 0; k < p.budgets.size(); ++k) store.put_contenders(cmp.id, int(k), p.budgets[k].name, p.contenders[k]);
    Transaction tx(store.db());
    if (p.grid.size() > 1) {
      for (const auto& [hash, a] : p.archs) {
        for (double lr : p.grid) {
          TrainRecipe r = p.lr_recipe;
          r.lr = lr;
          store.add_run(cmp.id, pending_run(hash, "lr", r));
        }
      }
    }
    if (o.measure) {
      CompareRun m;
      m.arch_hash = "*";
      m.phase = "measure";
      m.recipe = json::object();
      store.add_run(cmp.id, m);
    }
    tx.commit();
  });
  with_db([&] { plan_final_runs(store, cmp.id, p, o.seeds); });
  log("compare: " + std::to_string(p.archs.size()) + " architectures for " + std::to_string(p.budgets.size()) +
      " budget(s), " + std::to_string(o.seeds) + " seeds at " + format_count(double(p.recipe.tokens)) + " tokens, " +
      (p.grid.size() > 1 ? "learning rate from a grid of " + std::to_string(p.grid.size()) + " at " +
                               format_count(double(p.lr_recipe.tokens)) + " tokens"
                         : "learning rate " + lr_text(p.grid.front()) + " for all"));

  const fs::path root = artifacts_root(o.db.string(), o.artifacts) / o.study / ("compare-" + o.name);
  const std::string me = worker_identity();
  Heartbeat heartbeat(o.db.string(), o.lease_s, log, CompareStore::renew_compare_lease, "comparison run");
  Fault fault = Fault::from_env();
  const int threads = o.threads > 0 ? o.threads : cfg.recipe.threads;
  const auto t0 = clock::now();
  int64_t tokens_done_here = 0;
  double idle_s = 0.2;
  // A run held by a process of this machine that is gone is taken over at once.
  auto expire_gone = [&] {
    Stmt q(store.db(), "SELECT id, worker FROM compare_runs WHERE comparison_id = ? AND status = 'running' AND worker IS NOT NULL");
    q.bind(1, cmp.id);
    std::vector<int64_t> gone;
    while (q.step()) {
      if (!worker_alive(q.text(1))) gone.push_back(q.int64(0));
    }
    for (int64_t id : gone) {
      Stmt u(store.db(), "UPDATE compare_runs SET lease_expires = 0 WHERE id = ? AND status = 'running'");
      u.bind(1, id).run();
    }
  };

  // Training.
  while (true) {
    throw_if_stopped("compare: stopped between runs; run the same command again to continue");
    std::optional<CompareRun> run;
    const std::string token = new_lease_token();
    with_db([&] {
      expire_gone();
      plan_final_runs(store, cmp.id, p, o.seeds);
      Transaction tx(store.db(), Transaction::Lock::rows);
      run = store.claim(cmp.id, me, token, false);
      tx.commit();
    });
    if (!run) {
      Remaining left;
      with_db([&] { left = remaining(store.runs(cmp.id), p, o.seeds); });
      if (left.waiting == 0 && left.unplanned == 0) break;
      std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
      idle_s = std::min(idle_s * 2, 1.6);
      continue;
    }
    idle_s = 0.2;
    const Lease lease{run->id, 0, token};
    const ArchSpec& arch = p.archs.at(run->arch_hash);
    // The same run finished in another comparison of the study: its result.
    std::optional<CompareRun> same;
    if (o.reuse) with_db([&] { same = store.same_run_elsewhere(cmp.id, *run); });
    if (same) {
      with_db([&] { store.finish_reused(lease, *same); });
      log("compare: " + run->phase + " run, " + arch.name + ", lr " + lr_text(run->lr) + ", seed " +
          std::to_string(run->seed) + ": the same run as comparison run " + std::to_string(same->id) + "; its result reused");
      continue;
    }
    heartbeat.hold(lease);
    TrainRecipe r = TrainRecipe::from_json(run->recipe, "comparison run " + std::to_string(run->id));
    r.threads = threads;
    const fs::path dir = root / run_dir_name(*run);
    const bool resume = fs::exists(dir / "checkpoint" / "state.json");
    char head[400];
    std::snprintf(head, sizeof head, "compare: %s run, %s, lr %s, seed %lld, %s tokens%s", run->phase.c_str(),
                  arch.name.c_str(), lr_text(run->lr).c_str(), static_cast<long long>(run->seed),
                  format_count(double(r.tokens)).c_str(), resume ? " (continuing from its checkpoint)" : "");
    log(head);
    const auto ts = clock::now();
    try {
      if (!resume) {
        fs::remove_all(dir);
        fs::create_directories(dir);
      }
      Trainer trainer(arch, data.dataset, data.tokenizer, r, dir);
      auto last = clock::now();
      trainer.on_progress([&](const Progress& pr) {
        if (std::chrono::duration<double>(clock::now() - last).count() < 30) return;
        last = clock::now();
        char buf[200];
        std::snprintf(buf, sizeof buf, "compare:   step %lld/%lld loss %.4f, %s tok/s, run ETA %s",
                      static_cast<long long>(pr.step), static_cast<long long>(pr.steps), pr.loss,
                      format_count(pr.tokens_per_s).c_str(), format_duration(pr.eta_s).c_str());
        log(buf);
      });
      trainer.on_step([&](int64_t) {
        fault.hit("compare-step");
        if (heartbeat.lost()) throw LeaseLost("the lease was lost while training");
      });
      // A stop request ends the run at its next step with a checkpoint
      // (train/trainer.h): the run is given back, and the next command
      // continues it from there. Nothing of it is evaluated or kept as done.
      const TrainResult res = trainer.run(resume);
      throw_if_stopped("compare: stopped in a run; run the same command again to continue it from its checkpoint");
      fs::remove_all(dir / "checkpoint");
      json task = nullptr;
      if (run->phase == "final" && !task_eval.empty()) {
        const LoadedModel m = load_model_dir(dir);
        TaskEvalOptions te;
        te.batch = r.batch_size;
        task = evaluate_task(m.model, *data.tokenizer, task_eval, te).to_json();
      }
      heartbeat.drop();
      with_db([&] { store.finish(lease, res, task); });
      tokens_done_here += r.tokens;
      // ETA from this process's speed over the tokens still to train.
      Remaining left;
      with_db([&] {
        left = remaining(store.runs(cmp.id), p, o.seeds, [&](const CompareRun& x) {
          return o.reuse && store.same_run_elsewhere(cmp.id, x).has_value();
        });
      });
      const int64_t done = left.done, total = left.done + left.waiting + left.unplanned, tokens_left = left.tokens;
      const double spent = std::chrono::duration<double>(clock::now() - t0).count();
      const double eta = spent / double(std::max<int64_t>(1, tokens_done_here)) * double(tokens_left);
      char buf[300];
      std::snprintf(buf, sizeof buf, "compare: [%lld/%lld runs] %s: %.4f bits/byte in %s; ETA %s (this process's speed)",
                    static_cast<long long>(done), static_cast<long long>(total), arch.name.c_str(), res.val_bpb,
                    format_duration(std::chrono::duration<double>(clock::now() - ts).count()).c_str(),
                    format_duration(eta).c_str());
      log(buf);
    } catch (const DivergedError& e) {
      heartbeat.drop();
      log("compare: " + arch.name + ": " + e.what());
      with_db([&] { store.fail(lease, e.what(), std::chrono::duration<double>(clock::now() - ts).count()); });
    } catch (const LeaseLost& e) {
      heartbeat.drop();
      log("compare: " + std::string(e.what()) + "; another process continues the run");
    } catch (const Stopped&) {
      heartbeat.drop();
      with_db([&] { store.release(lease); });  // the checkpoint stays: the next claim continues from it
      throw;
    }
  }

  // Measuring: one process, once nothing trains.
  if (measure_here) {
    while (true) {
      throw_if_stopped("compare: stopped before measuring; run the same command again to continue");
      std::optional<CompareRun> run;
      const std::string token = new_lease_token();
      bool finished = false;
      with_db([&] {
        expire_gone();
        Transaction tx(store.db(), Transaction::Lock::rows);
        run = store.claim(cmp.id, me, token, true);
        tx.commit();
        for (const auto& r : store.runs(cmp.id)) {
          if (r.phase == "measure") finished = r.status == "done";
        }
      });
      if (finished) break;
      if (!run) {
        std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
        idle_s = std::min(idle_s * 2, 1.6);
        continue;
      }
      const Lease lease{run->id, 0, token};
      heartbeat.hold(lease);
      const auto tm = clock::now();
      if (lut_threads > 0) at::set_num_threads(lut_threads);
      MeasureOptions m = measure_options(parse_device(p.lut_device.value("device", "cpu"), "the table's device"),
                                         parse_dtype(cfg.dtype, "latency.dtype"), cfg.runtime);
      m.timing.warmup = 1;
      m.timing.min_count = 5;
      m.timing.min_seconds = o.min_seconds;
      const std::string device = describe_device(m.device).fingerprint();
      // The machine's speed around every measurement, so that the report can
      // judge each at the speed the table was profiled at (the budget is
      // met or not on the table's machine, not on this minute's).
      MachineProbe probe(m.device, probe_memory_bytes(read_cpu_caches()));
      std::set<std::tuple<std::string, std::string, int>> have;
      with_db([&] {
        for (const auto& l : store.latency(cmp.id)) have.insert({l.arch_hash, l.workload, l.round});
      });
      // What to measure: per workload, the distinct architectures of the budgets that use it.
      std::map<std::string, std::vector<std::string>> per_workload;
      std::map<std::string, Workload> workloads;
      for (size_t k = 0; k < p.budgets.size(); ++k) {
        const std::string w = p.budgets[k].workload.str();
        workloads.emplace(w, p.budgets[k].workload);
        for (const auto& c : p.contenders[k]) {
          auto& v = per_workload[w];
          if (std::find(v.begin(), v.end(), c.arch.hash()) == v.end()) v.push_back(c.arch.hash());
        }
      }
      int64_t todo = 0, done = 0;
      for (const auto& [w, hashes] : per_workload) {
        for (int rd = 0; rd < o.rounds; ++rd) {
          for (const auto& h : hashes) todo += !have.count({h, w, rd});
        }
      }
      try {
        for (int rd = 0; rd < o.rounds; ++rd) {
          for (const auto& [w, hashes] : per_workload) {
            for (size_t i = 0; i < hashes.size(); ++i) {
              const std::string& h = hashes[(i + size_t(rd)) % hashes.size()];  // rotated each round
              if (have.count({h, w, rd})) continue;
              throw_if_stopped("compare: stopped while measuring; run the same command again to continue");
              if (heartbeat.lost()) throw LeaseLost("the measurement's lease was lost");
              const ProbeReading before = probe.read();
              const BenchResult br = bench_workload(p.archs.at(h), workloads.at(w), m);
              LatencyRow row{h, w, device, rd, br.total.median_us, br.total.p10_us, br.total.p90_us, br.total.samples_us};
              row.probe_us = mean_reading(before, probe.read()).index();
              if (p.probe_reference_us > 0) row.reference_us = p.probe_reference_us;
              with_db([&] { store.put_latency(cmp.id, row); });
              ++done;
              const double spent = std::chrono::duration<double>(clock::now() - tm).count();
              char buf[300];
              char speed[80] = "";
              if (std::isfinite(row.speed_ratio())) {
                std::snprintf(speed, sizeof speed, " (probe %.2fx the table's reference)", row.speed_ratio());
              }
              std::snprintf(buf, sizeof buf, "compare: measured [%lld/%lld] round %d, %s, %s: %.3f ms%s; ETA %s",
                            static_cast<long long>(done), static_cast<long long>(todo), rd + 1, w.c_str(),
                            p.archs.at(h).name.c_str(), br.total.median_us / 1e3, speed,
                            format_duration(spent / double(done) * double(todo - done)).c_str());
              log(buf);
            }
          }
        }
        heartbeat.drop();
        with_db([&] { store.finish_measure(lease, std::chrono::duration<double>(clock::now() - tm).count()); });
      } catch (const LeaseLost& e) {
        heartbeat.drop();
        log("compare: " + std::string(e.what()) + "; another process measures");
      } catch (const Stopped&) {
        heartbeat.drop();
        with_db([&] { store.release(lease); });
        throw;
      }
    }
  }
  CompareReport rep;
  with_db([&] { rep = compare_report(store, cmp, o.study, p.budgets, cfg.space); });
  rep.db = o.db.string();
  return rep;
}

}  // namespace flashnas
