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
#include "search/baselines.h"
#include "study/heartbeat.h"
#include "search/plan.h"
#include "search/pricer.h"
#include "supernet/accounting.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/trainer.h"
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

// The inode of this process's PID namespace ("pid:[4026531836]"): PIDs
// are only comparable within one.
std::string pid_namespace() {
  std::error_code ec;
  const auto link = fs::read_symlink("/proc/self/ns/pid", ec).string();
  const auto open = link.find('['), close = link.find(']');
  if (ec || open == std::string::npos || close == std::string::npos) return "0";
  return link.substr(open + 1, close - open - 1);
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
  json info = {{"db", is_database_url(lut_db.string()) ? lut_db.string() : fs::absolute(lut_db).string()},
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

// search.seed_baselines: the hand designs the space holds, sized to every
// budget on the table, join search.init (the population grows to hold them);
// those the space cannot hold are named in the log.
void seed_hand_designs(SearchConfig& cfg, const LutTable& table, const std::function<void(const std::string&)>& log) {
  // The same designs for every worker: the table and the space decide them.
  Pricer seed_pricer(cfg, table);
  std::vector<std::string> added, outside;
  for (const auto& g : baseline_seeds(cfg.space, cfg.budgets,
                                      [&](const ArchSpec& a, size_t b) { return seed_pricer.latencies(a).at(b); },
                                      &outside)) {
    if (std::find(cfg.search.init.begin(), cfg.search.init.end(), g) != cfg.search.init.end()) continue;
    cfg.search.init.push_back(g);
    added.push_back(g);
  }
  std::string list;
  for (const auto& g : added) list += (list.empty() ? "" : "; ") + g;
  log("search: the initial population starts from " + std::to_string(added.size()) + " hand designs (search.seed_baselines)" +
      (list.empty() ? "" : ": " + list));
  if (!outside.empty()) {
    std::string names;
    for (const auto& o : outside) names += "\n  " + o;
    log("search: " + std::to_string(outside.size()) +
        " hand design(s) sized to the budgets are outside the space, so the search can never return them, "
        "yet a comparison judges the pick against them (grow space.max_operators or blocks_per_stage to hold them):" +
        names);
  }
  // Every budget's designs are seeded, not just the first budget's: a
  // population too small to hold them grows (the search must see the
  // designs it is judged against).
  if (int(cfg.search.init.size()) > cfg.search.population) {
    log("search: the initial population grows from " + std::to_string(cfg.search.population) + " to " +
        std::to_string(cfg.search.init.size()) + " to hold every seeded design");
    cfg.search.population = int(cfg.search.init.size());
  }
}

}  // namespace

std::string worker_identity() {
  const std::string pid = std::to_string(getpid());
  return host_name() + ":" + pid + ":" + start_time(pid) + ":" + pid_namespace();
}

bool worker_alive(const std::string& id) {
  const auto parts = split(id, ':');
  if (parts.size() != 3 && parts.size() != 4) return false;
  // Another machine's worker, or one in another process namespace (a
  // container with the same host name): not ours to judge; its lease says.
  if (parts[0] != host_name()) return true;
  if (parts.size() == 4 && parts[3] != pid_namespace()) return true;
  const std::string st = start_time(parts[1]);
  return !st.empty() && st == parts[2];
}

fs::path trial_dir(const fs::path& root, const std::string& study, int64_t number) {
  return root / study / ("trial-" + std::to_string(number));
}

SearchSummary run_search(const SearchConfig& cfg_in, const SearchOptions& o,
                         const std::function<void(const std::string&)>& log) {
  SearchConfig cfg = cfg_in;  // with the hand designs seeded (search.seed_baselines)
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
  if (cfg.search.seed_baselines) seed_hand_designs(cfg, table, log);

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
  // Task metrics of the model a finished run left in `dir` at `rung` (null:
  // none there: no task data, or a rung below the top with task_eval_rungs "top").
  auto task_metrics = [&](const fs::path& dir, int rung) -> json {
    if (task_eval.empty()) return nullptr;
    if (cfg.task_eval_rungs == "top" && rung != rungs.top()) return nullptr;
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
  store.set_lease_seconds(o.lease_s);
  // Every store step is one transaction (or reads), rerun while the database
  // is away (a PostgreSQL server restarting) for up to db_retry_s.
  SearchSummary sum;
  auto timed = [](double& into, const auto& work) {
    const auto start = clock::now();
    struct Add {
      double& into;
      clock::time_point start;
      ~Add() { into += std::chrono::duration<double>(clock::now() - start).count(); }
    } add{into, start};
    return work();
  };
  auto with_db = [&](const std::function<void()>& work) {
    timed(sum.times.db_s, [&] { with_db_retry(store.db(), work, o.db_retry_s, log); });
  };
  StudyRow study;
  with_db([&] { study = store.open_study(o.study, cfg.doc, cfg.search.seed, device, lut_info); });
  if (o.create_only) {
    SearchSummary created;
    created.wall_s = std::chrono::duration<double>(clock::now() - t0).count();
    return created;
  }
  const std::string me = worker_identity();
  const int64_t max_trained = rungs.multi() && !cfg.search.promote_all
                                  ? std::max<int64_t>(1, cfg.search.token_budget / rungs.cost(0))
                                  : int64_t(cfg.search.trials);
  const PlanLimits limits{max_trained * 4 + cfg.search.population};
  const std::string where = o.db.string() + ": study \"" + o.study + "\"";
  Fault fault = Fault::from_env();
  Heartbeat heartbeat(o.db.string(), o.lease_s, log);
  auto with_threads = [&](TrainRecipe r) {
    if (o.threads > 0) r.threads = o.threads;
    return r;
  };
  auto predicted_ms = [&](const TrialRow& t) {
    std::vector<double> v;
    for (const auto& b : cfg.budgets) v.push_back(t.predicted.at(b.name).get<double>());
    return format_ms_list(v);
  };
  // "trial N [...] genome | ms | params | loss (at rung r) | best at that rung".
  const int64_t planned = tokens_planned(cfg, rungs);
  int64_t mine = 0;  // tokens this worker trained
  auto result_line = [&](const TrialRow& t, const TrainResult& r, int rung) {
    double best = r.val_loss;
    int64_t best_n = t.number;
    std::vector<TrialRow> all;
    with_db([&] { all = store.trials(study.id); });
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
  // Each training step: the test-only fault hook, and a lease the heartbeat
  // found lost ends the work (its result would be refused).
  auto step_hook = [&](const char* point) {
    return [&fault, &heartbeat, point](int64_t) {
      if (fault.n > 0) fault.hit(point);
      if (heartbeat.lost()) throw LeaseLost("the lease was lost while training");
    };
  };
  // Work the study stops on for a reason that is not the candidate's (a
  // signal, bad input, a full disk) goes back, so another worker (or a rerun)
  // takes it at once.
  auto give_back = [&](const Lease& l) {
    heartbeat.drop();
    try {
      with_db([&] {
        Transaction tx(store.db(), Transaction::Lock::rows);
        store.release(l);
        tx.commit();
      });
    } catch (const std::exception& e) {
      log("search: could not give trial id " + std::to_string(l.trial_id) + " back (" + e.what() +
          "); it is taken over when its lease expires");
    }
  };
  // One run of a claimed trial under `lease` (rung 0, or a promotion to
  // `rung`) with the study's error ladder: `work` trains, evaluates and
  // commits. True when it did. False when the result does not count: the
  // lease was lost (another worker holds the trial and redoes it) or the
  // candidate failed (recorded as failed). What is not the candidate's fault
  // (a signal, bad input, a full disk, the database gone) stops the study,
  // the trial given back first so that a rerun redoes it.
  auto run_guarded = [&](const TrialRow& t, int rung, const Lease& lease, const std::string& at,
                         const std::function<void()>& work) -> bool {
    const auto ts = clock::now();
    try {
      work();
      return true;
    } catch (const LeaseLost& e) {
      heartbeat.drop();
      log(at + ": " + e.what() + "; another worker redoes it, this result is discarded");
    } catch (const Stopped&) {
      give_back(lease);
      throw;
    } catch (const IoError& e) {
      give_back(lease);
      throw IoError(std::string(e.what()) + " (the study stopped at " + at +
                    "; free space or fix the folder and rerun the same command to continue)");
    } catch (const InputError& e) {
      // The input's fault (e.g. a corrupt token file), not the candidate's
      // (a diverging candidate still fails alone).
      give_back(lease);
      throw InputError(std::string(e.what()) + " (the study stopped at " + at +
                       "; repair the input and rerun the same command to continue)");
    } catch (const DbUnavailable&) {
      heartbeat.drop();
      throw;
    } catch (const std::exception& e) {
      heartbeat.drop();
      const double s = std::chrono::duration<double>(clock::now() - ts).count();
      try {
        with_db([&] {
          Transaction tx(store.db());
          store.fail(lease, e.what(), s);
          tx.commit();
        });
      } catch (const LeaseLost& lost) {
        log(at + ": " + lost.what());
        return false;
      }
      ++sum.failed;
      log("trial " + std::to_string(t.number) + " " + t.genome + " failed" +
          (rung > 0 ? " at rung " + std::to_string(rung) : std::string()) + ": " + e.what());
    }
    return false;
  };
  // Continues a trial from its stable state at rung p.rung - 1 to rung p.rung.
  // A promotion killed in flight is redone from the same stable state, which
  // is removed only after the result is committed.
  auto promote = [&](const TrialRow& t, const Promotion& p, const Lease& lease) {
    const fs::path dir = trial_dir(runs_root, o.study, t.number);
    const fs::path from = Trainer::stable_dir(dir, rungs.recipe(p.rung - 1));
    const std::string at = "trial " + std::to_string(t.number) + ", rung " + std::to_string(p.rung);
    TrainResult r;
    json task;
    const bool done = run_guarded(t, p.rung, lease, at, [&] {
      const TrainRecipe rr = with_threads(rungs.recipe(p.rung));
      fs::remove_all(dir / "checkpoint");
      fs::remove_all(Trainer::stable_dir(dir, rr));
      const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"),
                                                "trial " + std::to_string(t.number));
      Trainer trainer(arch, ds, tok, rr, dir);
      trainer.keep_stable(p.rung < rungs.top());
      trainer.on_step(step_hook("in-promotion"));
      r = timed(sum.times.train_s, [&] { return trainer.run_from(from); });
      // Stopped by a signal mid-rung: the promotion is given back and the
      // worker exits; another worker (or a rerun) redoes it.
      throw_if_stopped("search: study \"" + o.study + "\" stopped in " + at + "; rerun the same command to continue");
      // Before the result is committed: once it is, another worker may
      // promote this trial again and write its own checkpoint here.
      fs::remove_all(dir / "checkpoint");
      task = timed(sum.times.task_s, [&] { return task_metrics(dir, p.rung); });
      with_db([&] {
        Transaction tx(store.db());
        store.finish_rung(lease, r);
        if (!task.is_null()) store.set_task_metrics(t.id, p.rung, task);
        tx.commit();
      });
      heartbeat.drop();
    });
    if (!done) return;
    std::error_code ec;
    fs::remove_all(from, ec);  // the state this promotion continued; no other promotion needs it
    ++sum.promoted;
    log(result_line(t, r, p.rung) + task_text(task));
  };
  // Trains a claimed trial (rung 0).
  auto train = [&](const TrialRow& t, const Lease& lease) {
    const fs::path dir = trial_dir(runs_root, o.study, t.number);
    const std::string at = "trial " + std::to_string(t.number);
    TrainResult r;
    json task;
    const bool done = run_guarded(t, 0, lease, at, [&] {
      fs::remove_all(dir);
      fs::create_directories(dir.parent_path());
      const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, at + ", column arch"), at);
      Trainer trainer(arch, ds, tok, with_threads(rungs.recipe(0)), dir);
      trainer.keep_stable(rungs.multi());
      trainer.on_step(step_hook("train-step"));
      r = timed(sum.times.train_s, [&] { return trainer.run(false); });
      // Stopped by a signal: nothing of the run is kept, the trial is pending again.
      throw_if_stopped("search: study \"" + o.study + "\" stopped in " + at +
                       "; it goes back to pending: rerun the same command to continue");
      fs::remove_all(dir / "checkpoint");
      task = timed(sum.times.task_s, [&] { return task_metrics(dir, 0); });
      with_db([&] { store.commit_result(lease, r, task); });
      heartbeat.drop();
      fault.hit("result");
    });
    if (!done) return;
    ++sum.trained;
    log(result_line(t, r, 0) + task_text(task));
  };
  // A worker with nothing to do rereads the study after 0.2 s, backing off to
  // 1.6 s while it stays idle, so that many waiting workers do not keep the
  // server busy; any claim or plan starts again at 0.2 s.
  int idle_ms = 200;
  for (;;) {
    throw_if_stopped("search: study \"" + o.study + "\" stopped between trials; rerun the same command to continue");
    // 1. A trial waiting to be claimed: pending, or its lease expired (the
    //    leases of this machine's workers that are gone end first).
    std::optional<TrialRow> waiting;
    std::string token = new_lease_token();
    with_db([&] {
      Transaction tx(store.db(), Transaction::Lock::rows);
      store.expire_leases_of(study.id, [](const std::string& w) { return !worker_alive(w); });
      store.drop_expired_promotions(study.id);
      waiting = store.claim_waiting(study.id, me, token);
      tx.commit();
    });
    if (waiting) {
      idle_ms = 200;
      const Lease lease{waiting->id, 0, token};
      heartbeat.hold(lease);
      fault.hit("claim");
      train(*waiting, lease);
      continue;
    }
    // 2. Otherwise the proposer: planned from a snapshot outside any
    //    transaction, applied only if the study is still as it was.
    std::vector<TrialRow> trials;
    std::string rng_state;
    with_db([&] {
      trials = store.trials(study.id);
      rng_state = store.get_study(o.study).rng_state;
    });
    Plan plan = timed(sum.times.plan_s, [&] { return plan_next(cfg, rungs, pricer, trials, rng_state, limits, where); });
    if (plan.kind == Plan::Kind::wait) {
      timed(sum.times.idle_s, [&] { std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms)); });
      idle_ms = std::min(2 * idle_ms, 1600);
      continue;
    }
    idle_ms = 200;
    const std::string digest = study_digest(trials, rng_state);
    bool applied = false;
    TrialRow claimed;
    token = new_lease_token();
    with_db([&] {
      applied = false;
      Transaction tx(store.db());
      if (study_digest(store.trials(study.id), store.get_study(o.study).rng_state) != digest) return;
      if (plan.kind == Plan::Kind::promote) {
        store.start_rung(Lease{plan.trial.id, plan.promotion->rung, token}, rungs.tokens(plan.promotion->rung), me);
      }
      for (auto t : plan.inserts) {
        if (t.status == "running") {
          t.worker = me;
          t.lease_token = token;
          claimed = store.insert(study.id, t);
        } else {
          store.insert(study.id, t);
        }
      }
      if (!plan.rng_state.empty()) store.set_rng(study.id, plan.rng_state);
      if (plan.kind == Plan::Kind::stop) store.set_finished(study.id, true);
      tx.commit();
      applied = true;
    });
    if (!applied) continue;  // another worker changed the study meanwhile: plan again
    sum.pruned += plan.pruned;
    sum.reused += plan.reused;
    for (const auto& line : plan.log) log(line);
    if (plan.kind == Plan::Kind::stop) {
      sum.complete = true;
      sum.stop_reason = plan.stop_reason;
      break;
    }
    if (plan.kind == Plan::Kind::promote) {
      const Lease lease{plan.trial.id, plan.promotion->rung, token};
      heartbeat.hold(lease);
      fault.hit("claim");
      promote(plan.trial, *plan.promotion, lease);
      continue;
    }
    if (plan.claims) {
      const Lease lease{claimed.id, 0, token};
      heartbeat.hold(lease);
      fault.hit("claim");
      train(claimed, lease);
    }
  }
  sum.wall_s = std::chrono::duration<double>(clock::now() - t0).count();
  return sum;
}

json SearchTimes::to_json(double wall_s) const {
  return json{{"train_s", train_s}, {"task_s", task_s}, {"plan_s", plan_s}, {"db_s", db_s}, {"idle_s", idle_s},
              {"other_s", wall_s - train_s - task_s - plan_s - db_s - idle_s}, {"overhead_s", overhead_s(wall_s)},
              {"overhead_fraction", wall_s > 0 ? overhead_s(wall_s) / wall_s : 0.0}};
}

std::string SearchTimes::describe(double wall_s) const {
  const double w = wall_s > 0 ? wall_s : 1;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "training %.1f%%, task metrics %.1f%%, proposing %.1f%%, database %.1f%%, waiting %.1f%%, other %.1f%%: "
                "overhead %.1f%% of %.0f s",
                100 * train_s / w, 100 * task_s / w, 100 * plan_s / w, 100 * db_s / w, 100 * idle_s / w,
                100 * (wall_s - train_s - task_s - plan_s - db_s - idle_s) / w, 100 * overhead_s(wall_s) / w, wall_s);
  return buf;
}

void create_study_tables(const std::string& db) { StudyStore(db, Access::create); }

WorkerSetup worker_setup(const std::string& db, const std::string& study, const fs::path& artifacts, bool check_data) {
  if (!database_exists(db)) throw InputError(db + ": no such study database");
  StudyRow row;
  {
    StudyStore store(db, Access::read_only);
    row = store.get_study(study);
  }
  const std::string where = db + ": study \"" + study + "\"";
  WorkerSetup w{SearchConfig::from_json(row.config, where + ", column config"), SearchOptions{}};
  std::error_code ec;
  if (check_data && !fs::exists(w.cfg.data, ec)) {
    throw InputError(where + ": its training data " + w.cfg.data.string() + " is not here" +
                     (w.cfg.data.is_relative() ? " (a relative path, read from the current folder " + fs::current_path().string() +
                                                     "; start the worker in the folder the study was created from)"
                                               : "; every worker needs it at the same path (a shared filesystem)"));
  }
  SearchOptions& o = w.opts;
  o.db = db;
  o.study = study;
  o.artifacts = artifacts_root(db, artifacts);
  const json& lut = row.lut_table;
  o.lut_db = lut.value("db", db);
  o.lut_device = lut.value("device", "");
  o.accept_unreliable_lut = lut.value("accepted_unreliable", false);
  return w;
}

}  // namespace flashnas
