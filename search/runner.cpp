#include "search/runner.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/files.h"
#include "common/fault.h"
#include "common/stop.h"
#include "common/format.h"
#include "common/version.h"
#include "profiler/measure.h"
#include "search/evolution.h"
#include "search/fidelity.h"
#include "search/pricer.h"
#include "supernet/accounting.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/training_data.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; "" when
// gone, or exited and not yet reaped (a zombie: state Z or X, field 3). A
// worker that died of an error stays a zombie until its parent waits for it,
// and its trial must be taken back before that.
std::string start_time(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  if (!std::getline(in, line)) return "";
  const auto close = line.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3 && (field == "Z" || field == "X")) return "";
  }
  return field;
}

std::vector<std::string> split(const std::string& s, char c) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, c);) out.push_back(x);
  return out;
}

void check_lut_covers(const SearchConfig& cfg, const LutStore& lut, int64_t device, const fs::path& lut_db) {
  std::vector<Workload> ws;
  for (const auto& b : cfg.budgets) ws.push_back(b.workload);
  const auto plan = plan_entries(cfg.space.grid_archs(), ws, cfg.dtype, cfg.runtime);
  int64_t missing = 0;
  std::string first;
  for (const auto& k : plan) {
    if (!lut.get(device, k)) {
      if (missing++ == 0) first = k.describe();
    }
  }
  if (missing > 0) {
    throw InputError(lut_db.string() + ": the latency table lacks " + std::to_string(missing) + " of the " +
                     std::to_string(plan.size()) + " entries this space and its budgets need (first: " + first +
                     "); run flashnas profile --space " + cfg.source + " --db " + lut_db.string());
  }
}

// The table's verdict for this search's budgets (profiler/session.h): a
// table judged unreliable for a budget's workload, or never validated, is
// refused unless the user accepts it. Returns what the study records.
json lut_verdict(const SearchConfig& cfg, const LutTable& table, const LutStore& lut, int64_t device,
                 const fs::path& lut_db, bool accept, const std::function<void(const std::string&)>& log) {
  const json& rep = table.report;
  json info = {{"db", fs::absolute(lut_db).string()},
               {"device", lut.device_info(device).value("fingerprint", "")},
               {"dtype", cfg.dtype},
               {"runtime", cfg.runtime},
               {"accepted_unreliable", false}};
  std::vector<std::string> problems;
  json per_budget = json::array();
  for (const auto& b : cfg.budgets) {
    std::string status = "unvalidated";
    std::string why = "the table was never validated (run flashnas profile --space CONFIG --validate 20)";
    if (!rep.is_null()) {
      for (const auto& v : rep["verdict"]["workloads"]) {
        if (v["workload"] != b.workload.str()) continue;
        status = v["status"].get<std::string>();
        why.clear();
        for (const auto& r : v["reasons"]) why += (why.empty() ? "" : "; ") + r.get<std::string>();
      }
      if (status == "unvalidated") why = "the table's validation does not cover workload " + b.workload.str();
    }
    per_budget.push_back({{"budget", b.name}, {"workload", b.workload.str()}, {"status", status}});
    if (status == "unreliable" || status == "unvalidated") problems.push_back(b.name + " (" + status + "): " + why);
    if (status == "limited") log("search: the latency table is limited by this machine's measurement spread for " + b.name);
  }
  info["budgets"] = per_budget;
  if (!rep.is_null()) {
    info["verdict"] = rep["verdict"]["status"];
    info["created_at"] = rep.value("created_at", "");
    info["finalized_by"] = rep.value("finalized_by", "");
  }
  const std::string me = git_commit();
  for (const auto& c : table.commits) {
    if (c != me) log("search: the latency table was measured by flashnas " + c + ", this build is " + me);
  }
  info["measured_by"] = std::vector<std::string>(table.commits.begin(), table.commits.end());
  if (!problems.empty()) {
    if (!accept) {
      throw InputError(lut_db.string() + ": the latency table is not reliable for this search's budgets: " +
                       join_comma(problems) + ". Profile again as the verdict says, or pass --accept-unreliable-lut "
                       "to search with it anyway (the study records that you did)");
    }
    info["accepted_unreliable"] = true;
    log("search: using a latency table judged unreliable (--accept-unreliable-lut): " + join_comma(problems));
  }
  return info;
}

std::string fmt_ms(const std::vector<double>& ms) {
  std::string s;
  char buf[32];
  for (size_t i = 0; i < ms.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s%.1f", i ? "/" : "", ms[i]);
    s += buf;
  }
  return s + " ms";
}

struct Claim {
  TrialRow trial;
  std::optional<Promotion> promotion;  // set: continue `trial` to promotion->rung
  bool wait = false, stop = false;
  std::string stop_reason;
};

}  // namespace

std::string worker_identity() {
  const std::string pid = std::to_string(getpid());
  return host_name() + ":" + pid + ":" + start_time(pid);
}

bool worker_alive(const std::string& id) {
  const auto parts = split(id, ':');
  if (parts.size() != 3) return false;
  if (parts[0] != host_name()) return true;  // another machine's worker: not ours to judge
  const std::string st = start_time(parts[1]);
  return !st.empty() && st == parts[2];
}

fs::path trial_dir(const fs::path& root, const std::string& study, int64_t number) {
  return root / study / ("trial-" + std::to_string(number));
}

SearchSummary run_search(const SearchConfig& cfg, const SearchOptions& o,
                         const std::function<void(const std::string&)>& log) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  check_path_name(o.study, "--study");  // it names the study's folder under DB.runs/
  const fs::path lut_db = o.lut_db.empty() ? o.db : o.lut_db;
  const fs::path runs_root = artifacts_root(o.db.string(), o.artifacts);
  if (!database_exists(lut_db.string())) {
    throw InputError(lut_db.string() + ": no such LUT database; run flashnas profile --space " + cfg.source + " --db " +
                     lut_db.string() + " first");
  }
  LutStore lut(lut_db, Access::read_only);
  const int64_t device = lut.find_device(o.lut_device);
  check_lut_covers(cfg, lut, device, lut_db);
  const LutTable table = LutTable::load(lut, device, cfg.dtype, cfg.runtime);
  const json lut_info = lut_verdict(cfg, table, lut, device, lut_db, o.accept_unreliable_lut, log);

  // Training data, loaded once per worker.
  const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed,
                                               cfg.source + ": field \"train.data\"");
  const auto& tok = data.tokenizer;
  const auto& ds = data.dataset;
  if (tok->vocab_size() > cfg.space.vocab_size) {
    throw InputError(cfg.source + ": field \"space.vocab_size\": " + std::to_string(cfg.space.vocab_size) +
                     " is smaller than the data's vocabulary (" + std::to_string(tok->vocab_size()) + ")");
  }
  if (cfg.objective == "completion_bpb" && !ds->task()) {
    throw InputError(cfg.source + ": field \"train.objective\": \"completion_bpb\" needs task data, and " + cfg.data.string() +
                     " is plain text; prepare the records (.jsonl) with flashnas data prepare, or use objective = \"loss\"");
  }
  const Rungs rungs(cfg);
  check_rungs_fit(cfg, rungs, *ds);
  // Task data: the held-out records each trained model completes for its task metrics.
  std::vector<TaskRecord> task_eval;
  if (ds->task() && cfg.task_eval_records > 0) {
    std::vector<int64_t> docs = ds->val_docs();
    docs.resize(std::min<size_t>(docs.size(), size_t(cfg.task_eval_records)));
    task_eval = task_records(*data.file, docs);
  }
  // Task metrics of the model a finished run left in `dir` (empty: none).
  auto task_metrics = [&](const fs::path& dir) -> json {
    if (task_eval.empty()) return nullptr;
    const LoadedModel m = load_model_dir(dir);
    TaskEvalOptions te;
    te.batch = cfg.recipe.batch_size;
    return evaluate_task(m.model, *tok, task_eval, te).to_json();
  };
  auto task_text = [](const json& task) -> std::string {
    if (task.is_null()) return "";
    std::string out = " | exact " + std::to_string(task["exact"].get<int64_t>()) + "/" + std::to_string(task["generated"].get<int64_t>());
    if (task["json_records"].get<int64_t>() > 0) {
      out += ", JSON valid " + std::to_string(task["json_valid"].get<int64_t>()) + "/" + std::to_string(task["json_records"].get<int64_t>());
    }
    return out;
  };

  Pricer pricer(cfg, table);
  {
    // Budgets no architecture can meet are an input error, found before the
    // study is created: random draws priced from the LUT, none trained.
    Rng probe(cfg.search.seed ^ 0xfea51b1e5eedULL);
    double best_ms = INFINITY;
    std::string best;
    bool feasible = false;
    for (int i = 0; i < cfg.search.max_attempts && !feasible; ++i) {
      const Priced p = pricer.price(cfg.space.random(probe));
      feasible = p.arch.has_value();
      if (!feasible && p.ms.at(0) < best_ms) {
        best_ms = p.ms.at(0);
        best = cfg.space.genome_text(p.genome) + ": " + p.reason;
      }
    }
    if (!feasible) {
      throw InputError(cfg.source + ": no architecture in " + std::to_string(cfg.search.max_attempts) +
                       " random draws meets the budgets and constraints; the fastest was " + best +
                       ". Loosen the budgets, or add smaller widths or structures to the space");
    }
  }
  StudyStore store(o.db, true);
  const StudyRow study = store.open_study(o.study, cfg.doc, cfg.search.seed, device, lut_info);
  const std::string me = worker_identity();
  const int64_t max_trained = rungs.multi() && !cfg.search.promote_all
                                  ? std::max<int64_t>(1, cfg.search.token_budget / rungs.cost(0))
                                  : int64_t(cfg.search.trials);
  const int64_t max_slots = max_trained * 4 + cfg.search.population;
  Fault fault = Fault::from_env();
  SearchSummary sum;
  auto with_threads = [&](TrainRecipe r) {
    if (o.threads > 0) r.threads = o.threads;
    return r;
  };
  auto predicted_ms = [&](const TrialRow& t) {
    std::vector<double> v;
    for (const auto& b : cfg.budgets) v.push_back(t.predicted.at(b.name).get<double>());
    return fmt_ms(v);
  };
  // "trial N [...] genome | ms | params | loss (at rung r) | best at that rung".
  const int64_t planned = tokens_planned(cfg, rungs);
  int64_t mine = 0;  // tokens this worker trained
  auto result_line = [&](const TrialRow& t, const TrainResult& r, int rung) {
    double best = r.val_loss;
    int64_t best_n = t.number;
    const auto all = store.trials(study.id);
    mine += rungs.cost(rung);
    const int64_t finished = tokens_finished(rungs, all);
    const double rate = double(mine) / std::max(1e-9, std::chrono::duration<double>(clock::now() - t0).count());
    char progress[128];
    std::snprintf(progress, sizeof progress, " | %.0f%% of %.3gM tokens, ETA %s", 100.0 * double(finished) / double(planned),
                  double(planned) / 1e6, format_duration(double(std::max<int64_t>(0, planned - finished)) / rate).c_str());
    for (const auto& x : all) {
      const double l = x.reused_from ? NAN : x.loss_at(rung);
      if (std::isfinite(l) && l < best) {
        best = l;
        best_n = x.number;
      }
    }
    char rung_text[96] = "";
    if (rungs.multi()) {
      std::snprintf(rung_text, sizeof rung_text, " at rung %d (%lld tokens)", rung, static_cast<long long>(rungs.tokens(rung)));
    }
    char buf[768];
    std::snprintf(buf, sizeof buf, "trial %lld [%s%s] %s | %s | %s params | loss %.4f (%.3f bpb)%s | best %.4f (trial %lld) | %.0f s%s",
                  static_cast<long long>(t.number), rung > 0 ? "promoted" : t.origin.c_str(),
                  rung == 0 && t.parent ? (" of " + std::to_string(*t.parent)).c_str() : "", t.genome.c_str(),
                  predicted_ms(t).c_str(), std::to_string(r.params).c_str(), r.val_loss, r.val_bpb, rung_text, best,
                  static_cast<long long>(best_n), r.wall_s, progress);
    return std::string(buf);
  };
  // Continues a trial from its stable state at rung p.rung - 1 to rung p.rung.
  // A promotion killed in flight is redone from the same stable state, which
  // is removed only after the result is committed.
  auto promote = [&](const TrialRow& t, const Promotion& p) {
    const fs::path dir = trial_dir(runs_root, o.study, t.number);
    const auto ts = clock::now();
    const fs::path from = Trainer::stable_dir(dir, rungs.recipe(p.rung - 1));
    TrainResult r;
    try {
      const TrainRecipe rr = with_threads(rungs.recipe(p.rung));
      fs::remove_all(dir / "checkpoint");
      fs::remove_all(Trainer::stable_dir(dir, rr));
      const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"), "trial " + std::to_string(t.number));
      Trainer trainer(arch, ds, tok, rr, dir);
      trainer.keep_stable(p.rung < rungs.top());
      if (fault.n > 0) trainer.on_step([&fault](int64_t) { fault.hit("in-promotion"); });
      r = trainer.run_from(from);
      // Stopped by a signal mid-rung: like an input fault, the rung stays in
      // flight under this worker, which exits; a rerun redoes it.
      throw_if_stopped("search: study \"" + o.study + "\" stopped in trial " + std::to_string(t.number) + ", rung " +
                       std::to_string(p.rung) + "; rerun the same command to continue");
      // Before the result is committed: once it is, another worker may
      // promote this trial again and write its own checkpoint here.
      fs::remove_all(dir / "checkpoint");
    } catch (const Stopped&) {
      throw;
    } catch (const IoError& e) {
      throw IoError(std::string(e.what()) + " (the study stopped at trial " + std::to_string(t.number) + ", rung " +
                    std::to_string(p.rung) + "; free space or fix the folder and rerun the same command to continue)");
    } catch (const InputError& e) {
      // The input's fault (e.g. a corrupt token file), not the candidate's:
      // the study stops; the rung stays in flight under this worker, which
      // exits, so a rerun with the input repaired redoes it.
      throw InputError(std::string(e.what()) + " (the study stopped at trial " + std::to_string(t.number) + ", rung " +
                       std::to_string(p.rung) + "; repair the input and rerun the same command to continue)");
    } catch (const std::exception& e) {
      const double s = std::chrono::duration<double>(clock::now() - ts).count();
      {
        Transaction tx(store.db());
        store.fail_rung(t.id, p.rung, e.what(), s);
        tx.commit();
      }
      ++sum.failed;
      log("trial " + std::to_string(t.number) + " " + t.genome + " failed at rung " + std::to_string(p.rung) + ": " + e.what());
      return;
    }
    const json task = task_metrics(dir);
    {
      Transaction tx(store.db());
      store.finish_rung(t.id, p.rung, r);
      if (!task.is_null()) store.set_task_metrics(t.id, p.rung, task);
      tx.commit();
    }
    std::error_code ec;
    fs::remove_all(from, ec);  // the state this promotion continued; no other promotion needs it
    ++sum.promoted;
    log(result_line(t, r, p.rung) + task_text(task));
  };
  // A claimed trial back to pending, when the study stops for a reason that
  // is not the candidate's.
  auto release = [&](const TrialRow& t) {
    Transaction tx(store.db());
    store.set_status(t.id, "pending", "");
    tx.commit();
  };
  for (;;) {
    throw_if_stopped("search: study \"" + o.study + "\" stopped between trials; rerun the same command to continue");
    Claim c;
    {
      Transaction tx(store.db());
      auto trials = store.trials(study.id);
      // Trials in flight in workers that are gone are redone.
      for (auto& t : trials) {
        if (t.status == "running" && !worker_alive(t.worker)) {
          store.set_status(t.id, "pending", "");
          t.status = "pending";
        }
      }
      int64_t trained = 0, slots = 0, in_flight = 0;
      std::map<std::string, const TrialRow*> by_hash;
      for (const auto& t : trials) {
        if (!t.slot) continue;
        ++slots;
        if (!t.reused_from) ++trained;
        if (t.status == "running") ++in_flight;
        by_hash.emplace(t.hash, &t);
      }
      // Promotions in flight in workers that are gone are redone by this one.
      for (const auto& t : trials) {
        for (const auto& x : t.rungs) {
          if (c.promotion || x.rung == 0 || x.status != "running") continue;
          if (worker_alive(x.worker)) {
            ++in_flight;
          } else {
            c.trial = t;
            c.promotion = Promotion{t.id, t.number, x.rung};
          }
        }
      }
      const TrialRow* pending = nullptr;
      for (const auto& t : trials) {
        if (t.status == "pending" && (!pending || *t.slot < *pending->slot)) pending = &t;
      }
      // Multi-fidelity: a promotion first, when one qualifies and the budget allows it.
      const int64_t committed = tokens_committed(rungs, trials);
      const int64_t budget = cfg.search.token_budget;
      const bool capped = rungs.multi() && !cfg.search.promote_all;
      if (!c.promotion && !pending && rungs.multi()) {
        auto p = next_promotion(cfg, rungs, trials);
        if (p && (!capped || committed + rungs.cost(p->rung) <= budget)) {
          for (const auto& t : trials) {
            if (t.id == p->trial_id) c.trial = t;
          }
          c.promotion = p;
        }
      }
      const bool room_for_new = capped ? committed + rungs.cost(0) <= budget && slots < max_slots
                                       : trained < cfg.search.trials && slots < max_slots;
      if (c.promotion) {
        store.start_rung(c.trial.id, c.promotion->rung, rungs.tokens(c.promotion->rung), me);
      } else if (pending) {
        store.set_status(pending->id, "running", me);
        c.trial = *pending;
        c.trial.status = "running";
      } else if (!room_for_new) {
        if (in_flight > 0) {
          c.wait = true;
        } else {
          c.stop = true;
          if (capped) {
            c.stop_reason = "the token budget is spent: " + std::to_string(committed) + " of " + std::to_string(budget) +
                            " tokens committed, " + std::to_string(trained) + " architectures";
          } else if (trained < cfg.search.trials) {
            c.stop_reason = std::to_string(slots) + " candidates drawn but only " + std::to_string(trained) +
                            " new architectures: the space is nearly exhausted";
          }
          store.set_finished(study.id, true);
        }
      } else {
        Rng rng = Rng::from_text(store.get_study(o.study).rng_state, o.db.string() + ": study \"" + o.study + "\", column rng_state");
        // The guided proposer's pool: LUT-priced, new to the study.
        const CandidateFn candidate = [&](const Genome& g) -> std::optional<Candidate> {
          Priced p = pricer.price(g);
          if (!p.arch || by_hash.count(p.arch->hash())) return std::nullopt;
          return Candidate{p.genome, account(*p.arch, 0, 4).params_total, p.ms};
        };
        bool placed = false;
        double best_ms = INFINITY;
        std::string best_reason;
        for (int attempt = 0; attempt < cfg.search.max_attempts && !placed && !c.wait; ++attempt) {
          auto prop = propose(cfg, slots, attempt, trials, rng, &candidate);
          if (!prop) {
            c.wait = true;
            break;
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
            store.insert(study.id, t);
            ++sum.pruned;
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
          auto dup = by_hash.find(t.hash);
          if (dup != by_hash.end()) {
            const TrialRow& d = *dup->second;
            if (d.status == "pending" || d.status == "running") continue;  // its result is not known yet
            t.reused_from = d.reused_from ? *d.reused_from : d.number;
            t.status = d.status;
            t.loss = d.loss;
            t.bpb = d.bpb;
            t.reason = d.status == "failed" ? "same architecture as trial " + std::to_string(*t.reused_from) + ": " + d.reason
                                            : "";
            store.insert(study.id, t);
            ++sum.reused;
            placed = true;
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.4f", t.loss);
            log("slot " + std::to_string(slots) + ": " + t.genome + " is trial " + std::to_string(*t.reused_from) +
                " again (" + fmt_ms(p.ms) + ", loss " + buf + "), result reused");
            continue;
          }
          t.status = "running";
          t.worker = me;
          c.trial = store.insert(study.id, t);
          placed = true;
        }
        if (!placed && !c.wait) {
          if (slots == 0) {
            throw InputError(cfg.source + ": no architecture in " + std::to_string(cfg.search.max_attempts) +
                             " draws meets the budgets and constraints; the fastest was " + best_reason +
                             ". Loosen the budgets or add smaller widths/structures to the space");
          }
          c.stop = true;
          c.stop_reason = "no new feasible architecture in " + std::to_string(cfg.search.max_attempts) + " draws";
          store.set_finished(study.id, true);
        }
        store.set_rng(study.id, rng.state_text());
      }
      tx.commit();
    }
    if (c.stop) {
      sum.complete = true;
      sum.stop_reason = c.stop_reason;
      break;
    }
    if (c.wait || c.trial.id == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    fault.hit("claim");
    if (c.promotion) {
      promote(c.trial, *c.promotion);
      continue;
    }
    // Train the claimed trial (rung 0).
    TrialRow& t = c.trial;
    const fs::path dir = trial_dir(runs_root, o.study, t.number);
    const auto ts = clock::now();
    try {
      fs::remove_all(dir);
      fs::create_directories(dir.parent_path());
      const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"), "trial " + std::to_string(t.number));
      Trainer trainer(arch, ds, tok, with_threads(rungs.recipe(0)), dir);
      trainer.keep_stable(rungs.multi());
      if (fault.n > 0) trainer.on_step([&fault](int64_t) { fault.hit("train-step"); });
      const TrainResult r = trainer.run(false);
      throw_if_stopped("search: study \"" + o.study + "\" stopped in trial " + std::to_string(t.number) +
                       "; it goes back to pending: rerun the same command to continue");
      fs::remove_all(dir / "checkpoint");
      const json task = task_metrics(dir);
      {
        Transaction tx(store.db());
        store.finish(t.id, r);
        if (!task.is_null()) store.set_task_metrics(t.id, 0, task);
        tx.commit();
      }
      fault.hit("result");
      ++sum.trained;
      log(result_line(t, r, 0) + task_text(task));
    } catch (const Stopped&) {
      // Stopped by a signal: nothing of the run is kept, the trial is pending again.
      release(t);
      throw;
    } catch (const IoError& e) {
      // The machine's fault (e.g. a full disk): as with bad input, the trial
      // is pending again and the study stops instead of failing every candidate.
      release(t);
      throw IoError(std::string(e.what()) + " (the study stopped at trial " + std::to_string(t.number) +
                    "; free space or fix the folder and rerun the same command to continue)");
    } catch (const InputError& e) {
      // The input's fault, not the candidate's: the trial goes back to
      // pending and the study stops with the reason, so a rerun with the
      // input repaired trains it (a diverging candidate still fails alone).
      release(t);
      throw InputError(std::string(e.what()) + " (the study stopped at trial " + std::to_string(t.number) +
                       "; repair the input and rerun the same command to continue)");
    } catch (const std::exception& e) {
      const double s = std::chrono::duration<double>(clock::now() - ts).count();
      {
        Transaction tx(store.db());
        store.fail(t.id, e.what(), s);
        tx.commit();
      }
      ++sum.failed;
      log("trial " + std::to_string(t.number) + " " + t.genome + " failed: " + e.what());
    }
  }
  sum.wall_s = std::chrono::duration<double>(clock::now() - t0).count();
  return sum;
}

void create_study_tables(const std::string& db) { StudyStore(db, Access::create); }

}  // namespace flashnas
