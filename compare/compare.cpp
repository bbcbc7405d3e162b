#include "compare/compare.h"

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
#include "profiler/measure.h"
#include "profiler/probe.h"
#include "compare/compare_plan.h"
#include "study/heartbeat.h"
#include "search/runner.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

using Log = std::function<void(const std::string&)>;
using namespace compare_detail;

// One process's part of a comparison once its plan is checked: it opens (or
// reopens) the comparison in the database, trains runs until none is left to
// claim, then measures every contender (one process, once nothing trains).
// Each run and the measurement are leased, so several processes share the
// work and a killed one's part is taken over.
class Session {
 public:
  Session(const CompareOptions& o, const Plan& p, const TrainingData& data, std::vector<TaskRecord> task_eval,
          const Log& log)
      : o_(o),
        p_(p),
        data_(data),
        task_eval_(std::move(task_eval)),
        log_(log),
        store_(o.db.string(), Access::read_write),
        heartbeat_(o.db.string(), o.lease_s, log, CompareStore::renew_compare_lease, "comparison run"),
        fault_(Fault::from_env()),
        me_(worker_identity()),
        root_(artifacts_root(o.db.string(), o.artifacts) / o.study / ("compare-" + o.name)),
        threads_(o.threads > 0 ? o.threads : p.cfg.recipe.threads) {
    store_.set_lease_seconds(o.lease_s);
  }

  void open();
  void train();
  void measure(int lut_threads);
  CompareReport report() {
    CompareReport rep;
    with_db([&] { rep = compare_report(store_, cmp_, o_.study, p_.budgets, p_.cfg.space); });
    rep.db = o_.db.string();
    return rep;
  }

 private:
  using clock = std::chrono::steady_clock;
  void with_db(const std::function<void()>& work) { with_db_retry(store_.db(), work, o_.db_retry_s, log_); }
  void expire_gone();
  void idle() {
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_s_));
    idle_s_ = std::min(idle_s_ * 2, 1.6);
  }
  void train_run(const CompareRun& run, const Lease& lease);
  void log_progress(const ArchSpec& arch, double bpb, clock::time_point started);
  void measure_all(const Lease& lease, int lut_threads);

  const CompareOptions& o_;
  const Plan& p_;
  const TrainingData& data_;
  const std::vector<TaskRecord> task_eval_;
  const Log& log_;
  CompareStore store_;
  Heartbeat heartbeat_;
  Fault fault_;
  const std::string me_;
  const fs::path root_;
  const int threads_;
  ComparisonRow cmp_;
  clock::time_point t0_ = clock::now();
  int64_t tokens_done_here_ = 0;
  double idle_s_ = 0.2;
};

// The comparison's rows: contenders, grid runs, the measurement and the
// final runs that can be planned yet (all idempotent on a reopened one).
void Session::open() {
  with_db([&] { cmp_ = store_.open(p_.study.id, o_.name, p_.config); });
  with_db([&] {
    for (size_t k = 0; k < p_.budgets.size(); ++k) store_.put_contenders(cmp_.id, int(k), p_.budgets[k].name, p_.contenders[k]);
    Transaction tx(store_.db());
    if (p_.grid.size() > 1) {
      for (const auto& [hash, a] : p_.archs) {
        for (double lr : p_.grid) {
          TrainRecipe r = p_.lr_recipe;
          r.lr = lr;
          store_.add_run(cmp_.id, pending_run(hash, "lr", r));
        }
      }
    }
    if (o_.measure) {
      CompareRun m;
      m.arch_hash = "*";
      m.phase = "measure";
      m.recipe = json::object();
      store_.add_run(cmp_.id, m);
    }
    tx.commit();
  });
  with_db([&] { plan_final_runs(store_, cmp_.id, p_, o_.seeds); });
  log_("compare: " + std::to_string(p_.archs.size()) + " architectures for " + std::to_string(p_.budgets.size()) +
       " budget(s), " + std::to_string(o_.seeds) + " seeds at " + format_count(double(p_.recipe.tokens)) + " tokens, " +
       (p_.grid.size() > 1 ? "learning rate from a grid of " + std::to_string(p_.grid.size()) + " at " +
                                 format_count(double(p_.lr_recipe.tokens)) + " tokens"
                           : "learning rate " + lr_text(p_.grid.front()) + " for all"));
}

// A run held by a process of this machine that is gone is taken over at once.
void Session::expire_gone() {
  Stmt q(store_.db(), "SELECT id, worker FROM compare_runs WHERE comparison_id = ? AND status = 'running' AND worker IS NOT NULL");
  q.bind(1, cmp_.id);
  std::vector<int64_t> gone;
  while (q.step()) {
    if (!worker_alive(q.text(1))) gone.push_back(q.int64(0));
  }
  for (int64_t id : gone) {
    Stmt u(store_.db(), "UPDATE compare_runs SET lease_expires = 0 WHERE id = ? AND status = 'running'");
    u.bind(1, id).run();
  }
}

// Claims and trains runs until every one is done or failed (waiting while
// other processes still train some).
void Session::train() {
  while (true) {
    throw_if_stopped("compare: stopped between runs; run the same command again to continue");
    std::optional<CompareRun> run;
    const std::string token = new_lease_token();
    with_db([&] {
      expire_gone();
      plan_final_runs(store_, cmp_.id, p_, o_.seeds);
      Transaction tx(store_.db(), Transaction::Lock::rows);
      run = store_.claim(cmp_.id, me_, token, false);
      tx.commit();
    });
    if (!run) {
      Remaining left;
      with_db([&] { left = remaining(store_.runs(cmp_.id), p_, o_.seeds); });
      if (left.waiting == 0 && left.unplanned == 0) return;
      idle();
      continue;
    }
    idle_s_ = 0.2;
    const Lease lease{run->id, 0, token};
    const ArchSpec& arch = p_.archs.at(run->arch_hash);
    // The same run finished in another comparison of the study: its result.
    std::optional<CompareRun> same;
    if (o_.reuse) with_db([&] { same = store_.same_run_elsewhere(cmp_.id, *run); });
    if (same) {
      with_db([&] { store_.finish_reused(lease, *same); });
      log_("compare: " + run->phase + " run, " + arch.name + ", lr " + lr_text(run->lr) + ", seed " +
           std::to_string(run->seed) + ": the same run as comparison run " + std::to_string(same->id) + "; its result reused");
      continue;
    }
    train_run(*run, lease);
  }
}

// One claimed run: trained (or continued from its checkpoint), evaluated,
// finished. A diverged run fails with its reason; a lost lease leaves the run
// to the process that took it; a stop gives it back with its checkpoint.
void Session::train_run(const CompareRun& run, const Lease& lease) {
  const ArchSpec& arch = p_.archs.at(run.arch_hash);
  heartbeat_.hold(lease);
  TrainRecipe r = TrainRecipe::from_json(run.recipe, "comparison run " + std::to_string(run.id));
  r.threads = threads_;
  const fs::path dir = root_ / run_dir_name(run);
  const bool resume = fs::exists(dir / "checkpoint" / "state.json");
  char head[400];
  std::snprintf(head, sizeof head, "compare: %s run, %s, lr %s, seed %lld, %s tokens%s", run.phase.c_str(),
                arch.name.c_str(), lr_text(run.lr).c_str(), static_cast<long long>(run.seed),
                format_count(double(r.tokens)).c_str(), resume ? " (continuing from its checkpoint)" : "");
  log_(head);
  const auto ts = clock::now();
  try {
    if (!resume) {
      fs::remove_all(dir);
      fs::create_directories(dir);
    }
    Trainer trainer(arch, data_.dataset, data_.tokenizer, r, dir);
    auto last = clock::now();
    trainer.on_progress([&](const Progress& pr) {
      if (std::chrono::duration<double>(clock::now() - last).count() < 30) return;
      last = clock::now();
      char buf[200];
      std::snprintf(buf, sizeof buf, "compare:   step %lld/%lld loss %.4f, %s tok/s, run ETA %s",
                    static_cast<long long>(pr.step), static_cast<long long>(pr.steps), pr.loss,
                    format_count(pr.tokens_per_s).c_str(), format_duration(pr.eta_s).c_str());
      log_(buf);
    });
    trainer.on_step([&](int64_t) {
      fault_.hit("compare-step");
      if (heartbeat_.lost()) throw LeaseLost("the lease was lost while training");
    });
    // A stop request ends the run at its next step with a checkpoint
    // (train/trainer.h): the run is given back, and the next command
    // continues it from there. Nothing of it is evaluated or kept as done.
    const TrainResult res = trainer.run(resume);
    throw_if_stopped("compare: stopped in a run; run the same command again to continue it from its checkpoint");
    fs::remove_all(dir / "checkpoint");
    json task = nullptr;
    if (run.phase == "final" && !task_eval_.empty()) {
      const LoadedModel m = load_model_dir(dir);
      TaskEvalOptions te;
      te.batch = r.batch_size;
      task = evaluate_task(m.model, *data_.tokenizer, task_eval_, te).to_json();
    }
    heartbeat_.drop();
    with_db([&] { store_.finish(lease, res, task); });
    tokens_done_here_ += r.tokens;
    log_progress(arch, res.val_bpb, ts);
  } catch (const DivergedError& e) {
    heartbeat_.drop();
    log_("compare: " + arch.name + ": " + e.what());
    with_db([&] { store_.fail(lease, e.what(), std::chrono::duration<double>(clock::now() - ts).count()); });
  } catch (const LeaseLost& e) {
    heartbeat_.drop();
    log_("compare: " + std::string(e.what()) + "; another process continues the run");
  } catch (const Stopped&) {
    heartbeat_.drop();
    with_db([&] { store_.release(lease); });  // the checkpoint stays: the next claim continues from it
    throw;
  }
}

// Runs done and the ETA from this process's speed over the tokens still to
// train (runs another comparison already made cost none).
void Session::log_progress(const ArchSpec& arch, double bpb, clock::time_point started) {
  Remaining left;
  with_db([&] {
    left = remaining(store_.runs(cmp_.id), p_, o_.seeds, [&](const CompareRun& x) {
      return o_.reuse && store_.same_run_elsewhere(cmp_.id, x).has_value();
    });
  });
  const int64_t done = left.done, total = left.done + left.waiting + left.unplanned, tokens_left = left.tokens;
  const double spent = std::chrono::duration<double>(clock::now() - t0_).count();
  const double eta = spent / double(std::max<int64_t>(1, tokens_done_here_)) * double(tokens_left);
  char buf[300];
  std::snprintf(buf, sizeof buf, "compare: [%lld/%lld runs] %s: %.4f bits/byte in %s; ETA %s (this process's speed)",
                static_cast<long long>(done), static_cast<long long>(total), arch.name.c_str(), bpb,
                format_duration(std::chrono::duration<double>(clock::now() - started).count()).c_str(),
                format_duration(eta).c_str());
  log_(buf);
}

// Claims the measurement once nothing trains and measures it (or waits while
// another process does).
void Session::measure(int lut_threads) {
  while (true) {
    throw_if_stopped("compare: stopped before measuring; run the same command again to continue");
    std::optional<CompareRun> run;
    const std::string token = new_lease_token();
    bool finished = false;
    with_db([&] {
      expire_gone();
      Transaction tx(store_.db(), Transaction::Lock::rows);
      run = store_.claim(cmp_.id, me_, token, true);
      tx.commit();
      for (const auto& r : store_.runs(cmp_.id)) {
        if (r.phase == "measure") finished = r.status == "done";
      }
    });
    if (finished) return;
    if (!run) {
      idle();
      continue;
    }
    measure_all(Lease{run->id, 0, token}, lut_threads);
  }
}

// Every contender's whole workload, per budget's workload, in `rounds`
// interleaved rounds (the order rotated each round), with the machine-speed
// probe read around each; rows already stored are kept (a resumed
// measurement continues).
void Session::measure_all(const Lease& lease, int lut_threads) {
  heartbeat_.hold(lease);
  const auto tm = clock::now();
  if (lut_threads > 0) at::set_num_threads(lut_threads);
  MeasureOptions m = measure_options(parse_device(p_.lut_device.value("device", "cpu"), "the table's device"),
                                     parse_dtype(p_.cfg.dtype, "latency.dtype"), p_.cfg.runtime);
  m.timing.warmup = 1;
  m.timing.min_count = 5;
  m.timing.min_seconds = o_.min_seconds;
  const std::string device = describe_device(m.device).fingerprint();
  // The machine's speed around every measurement, so that the report can
  // judge each at the speed the table was profiled at (the budget is
  // met or not on the table's machine, not on this minute's).
  MachineProbe probe(m.device, probe_memory_bytes(read_cpu_caches()));
  std::set<std::tuple<std::string, std::string, int>> have;
  with_db([&] {
    for (const auto& l : store_.latency(cmp_.id)) have.insert({l.arch_hash, l.workload, l.round});
  });
  // What to measure: per workload, the distinct architectures of the budgets that use it.
  std::map<std::string, std::vector<std::string>> per_workload;
  std::map<std::string, Workload> workloads;
  for (size_t k = 0; k < p_.budgets.size(); ++k) {
    const std::string w = p_.budgets[k].workload.str();
    workloads.emplace(w, p_.budgets[k].workload);
    for (const auto& c : p_.contenders[k]) {
      auto& v = per_workload[w];
      if (std::find(v.begin(), v.end(), c.arch.hash()) == v.end()) v.push_back(c.arch.hash());
    }
  }
  int64_t todo = 0, done = 0;
  for (const auto& [w, hashes] : per_workload) {
    for (int rd = 0; rd < o_.rounds; ++rd) {
      for (const auto& h : hashes) todo += !have.count({h, w, rd});
    }
  }
  try {
    for (int rd = 0; rd < o_.rounds; ++rd) {
      for (const auto& [w, hashes] : per_workload) {
        for (size_t i = 0; i < hashes.size(); ++i) {
          const std::string& h = hashes[(i + size_t(rd)) % hashes.size()];  // rotated each round
          if (have.count({h, w, rd})) continue;
          throw_if_stopped("compare: stopped while measuring; run the same command again to continue");
          if (heartbeat_.lost()) throw LeaseLost("the measurement's lease was lost");
          const ProbeReading before = probe.read();
          const BenchResult br = bench_workload(p_.archs.at(h), workloads.at(w), m);
          LatencyRow row{h, w, device, rd, br.total.median_us, br.total.p10_us, br.total.p90_us, br.total.samples_us};
          row.probe_us = mean_reading(before, probe.read()).index();
          if (p_.probe_reference_us > 0) row.reference_us = p_.probe_reference_us;
          with_db([&] { store_.put_latency(cmp_.id, row); });
          ++done;
          const double spent = std::chrono::duration<double>(clock::now() - tm).count();
          char buf[300];
          char speed[80] = "";
          if (std::isfinite(row.speed_ratio())) {
            std::snprintf(speed, sizeof speed, " (probe %.2fx the table's reference)", row.speed_ratio());
          }
          std::snprintf(buf, sizeof buf, "compare: measured [%lld/%lld] round %d, %s, %s: %.3f ms%s; ETA %s",
                        static_cast<long long>(done), static_cast<long long>(todo), rd + 1, w.c_str(),
                        p_.archs.at(h).name.c_str(), br.total.median_us / 1e3, speed,
                        format_duration(spent / double(done) * double(todo - done)).c_str());
          log_(buf);
        }
      }
    }
    heartbeat_.drop();
    with_db([&] { store_.finish_measure(lease, std::chrono::duration<double>(clock::now() - tm).count()); });
  } catch (const LeaseLost& e) {
    heartbeat_.drop();
    log_("compare: " + std::string(e.what()) + "; another process measures");
  } catch (const Stopped&) {
    heartbeat_.drop();
    with_db([&] { store_.release(lease); });
    throw;
  }
}

}  // namespace

CompareReport run_compare(const CompareOptions& o, const Log& log) {
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
  Session session(o, p, data, std::move(task_eval), log);
  session.open();
  session.train();
  if (measure_here) session.measure(lut_threads);
  return session.report();
}

}  // namespace flashnas
