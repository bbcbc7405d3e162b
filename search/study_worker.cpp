#include "search/study_worker.h"

#include <cmath>
#include <cstdio>
#include <thread>

#include "common/db.h"
#include "common/error.h"
#include "common/files.h"
#include "common/format.h"
#include "common/stop.h"
#include "train/checkpoint.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

using Clock = StudyWorker::Clock;

// Runs `work`, adding its wall time to `into` however it ends.
template <class F>
auto timed(double& into, F&& work) {
  struct Add {
    double& into;
    Clock::time_point start;
    ~Add() { into += std::chrono::duration<double>(Clock::now() - start).count(); }
  } add{into, Clock::now()};
  return work();
}

std::string task_text(const json& task) {
  if (task.is_null()) return "";
  std::string out = " | exact " + std::to_string(task["exact"].get<int64_t>()) + "/" + std::to_string(task["generated"].get<int64_t>());
  if (task["json_records"].get<int64_t>() > 0) {
    out += ", JSON valid " + std::to_string(task["json_valid"].get<int64_t>()) + "/" + std::to_string(task["json_records"].get<int64_t>());
  }
  return out;
}

// Candidates a study may draw: every training the token budget affords (or
// `trials`), four draws each (pruned and reused ones included), plus the
// initial population.
PlanLimits plan_limits(const SearchConfig& cfg, const Rungs& rungs) {
  const int64_t max_trained = rungs.multi() && !cfg.search.promote_all
                                  ? std::max<int64_t>(1, cfg.search.token_budget / rungs.cost(0))
                                  : int64_t(cfg.search.trials);
  return PlanLimits{max_trained * 4 + cfg.search.population};
}

}  // namespace

StudyWorker::StudyWorker(const WorkerInputs& in, int64_t device, const json& lut_info, Clock::time_point t0)
    : in_(in),
      cfg_(in.cfg),
      rungs_(in.rungs),
      t0_(t0),
      store_(in.opts.db, true),
      me_(worker_identity()),
      limits_(plan_limits(in.cfg, in.rungs)),
      where_(in.opts.db.string() + ": study \"" + in.opts.study + "\""),
      fault_(Fault::from_env()),
      heartbeat_(in.opts.db.string(), in.opts.lease_s, in.log),
      planned_(tokens_planned(in.cfg, in.rungs)) {
  store_.set_lease_seconds(in_.opts.lease_s);
  with_db([&] { study_ = store_.open_study(in_.opts.study, cfg_.doc, cfg_.search.seed, device, lut_info); });
}

// Every store step is one transaction (or reads), rerun while the database
// is away (a PostgreSQL server restarting) for up to db_retry_s.
void StudyWorker::with_db(const std::function<void()>& work) {
  timed(sum_.times.db_s, [&] { with_db_retry(store_.db(), work, in_.opts.db_retry_s, in_.log); });
}

json StudyWorker::task_metrics(const fs::path& dir, int rung) {
  if (in_.task_eval.empty()) return nullptr;
  if (cfg_.task_eval_rungs == "top" && rung != rungs_.top()) return nullptr;
  const LoadedModel m = load_model_dir(dir);
  TaskEvalOptions te;
  te.batch = cfg_.recipe.batch_size;
  return evaluate_task(m.model, *in_.data.tokenizer, in_.task_eval, te).to_json();
}

std::string StudyWorker::result_line(const TrialRow& t, const TrainResult& r, int rung) {
  double best = r.val_loss;
  int64_t best_n = t.number;
  std::vector<TrialRow> all;
  with_db([&] { all = store_.trials(study_.id); });
  mine_ += rungs_.cost(rung);
  const int64_t finished = tokens_finished(rungs_, all);
  const double rate = double(mine_) / std::max(1e-9, std::chrono::duration<double>(Clock::now() - t0_).count());
  char progress[128];
  std::snprintf(progress, sizeof progress, " | %.0f%% of %.3gM tokens, ETA %s", 100.0 * double(finished) / double(planned_),
                double(planned_) / 1e6, format_duration(double(std::max<int64_t>(0, planned_ - finished)) / rate).c_str());
  for (const auto& x : all) {
    const double l = x.reused_from ? NAN : x.loss_at(rung);
    if (std::isfinite(l) && l < best) {
      best = l;
      best_n = x.number;
    }
  }
  char rung_text[96] = "";
  if (rungs_.multi()) {
    std::snprintf(rung_text, sizeof rung_text, " at rung %d (%lld tokens)", rung, static_cast<long long>(rungs_.tokens(rung)));
  }
  std::vector<double> ms;
  for (const auto& b : cfg_.budgets) ms.push_back(t.predicted.at(b.name).get<double>());
  char buf[768];
  std::snprintf(buf, sizeof buf, "trial %lld [%s%s] %s | %s | %s params | loss %.4f (%.3f bpb)%s | best %.4f (trial %lld) | %.0f s%s",
                static_cast<long long>(t.number), rung > 0 ? "promoted" : t.origin.c_str(),
                rung == 0 && t.parent ? (" of " + std::to_string(*t.parent)).c_str() : "", t.genome.c_str(),
                format_ms_list(ms).c_str(), std::to_string(r.params).c_str(), r.val_loss, r.val_bpb, rung_text, best,
                static_cast<long long>(best_n), r.wall_s, progress);
  return buf;
}

// Each training step: the test-only fault hook, and a lease the heartbeat
// found lost ends the work (its result would be refused).
std::function<void(int64_t)> StudyWorker::step_hook(const char* point) {
  return [this, point](int64_t) {
    if (fault_.n > 0) fault_.hit(point);
    if (heartbeat_.lost()) throw LeaseLost("the lease was lost while training");
  };
}

TrainRecipe StudyWorker::with_threads(TrainRecipe r) const {
  if (in_.opts.threads > 0) r.threads = in_.opts.threads;
  return r;
}

// Work the study stops on for a reason that is not the candidate's (a
// signal, bad input, a full disk) goes back, so another worker (or a rerun)
// takes it at once.
void StudyWorker::give_back(const Lease& l) {
  heartbeat_.drop();
  try {
    with_db([&] {
      Transaction tx(store_.db(), Transaction::Lock::rows);
      store_.release(l);
      tx.commit();
    });
  } catch (const std::exception& e) {
    in_.log("search: could not give trial id " + std::to_string(l.trial_id) + " back (" + e.what() +
            "); it is taken over when its lease expires");
  }
}

// One run of a claimed trial under `lease` (rung 0, or a promotion to
// `rung`) with the study's error ladder: `work` trains, evaluates and
// commits. True when it did. False when the result does not count: the
// lease was lost (another worker holds the trial and redoes it) or the
// candidate failed (recorded as failed). What is not the candidate's fault
// (a signal, bad input, a full disk, the database gone) stops the study,
// the trial given back first so that a rerun redoes it.
bool StudyWorker::run_guarded(const TrialRow& t, int rung, const Lease& lease, const std::string& at,
                              const std::function<void()>& work) {
  const auto ts = Clock::now();
  try {
    work();
    return true;
  } catch (const LeaseLost& e) {
    heartbeat_.drop();
    in_.log(at + ": " + e.what() + "; another worker redoes it, this result is discarded");
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
    heartbeat_.drop();
    throw;
  } catch (const std::exception& e) {
    heartbeat_.drop();
    const double s = std::chrono::duration<double>(Clock::now() - ts).count();
    try {
      with_db([&] {
        Transaction tx(store_.db());
        store_.fail(lease, e.what(), s);
        tx.commit();
      });
    } catch (const LeaseLost& lost) {
      in_.log(at + ": " + lost.what());
      return false;
    }
    ++sum_.failed;
    in_.log("trial " + std::to_string(t.number) + " " + t.genome + " failed" +
            (rung > 0 ? " at rung " + std::to_string(rung) : std::string()) + ": " + e.what());
  }
  return false;
}

// Continues a trial from its stable state at rung p.rung - 1 to rung p.rung.
// A promotion killed in flight is redone from the same stable state, which
// is removed only after the result is committed.
void StudyWorker::promote(const TrialRow& t, const Promotion& p, const Lease& lease) {
  const fs::path dir = trial_dir(in_.runs_root, in_.opts.study, t.number);
  const fs::path from = Trainer::stable_dir(dir, rungs_.recipe(p.rung - 1));
  const std::string at = "trial " + std::to_string(t.number) + ", rung " + std::to_string(p.rung);
  TrainResult r;
  json task;
  const bool done = run_guarded(t, p.rung, lease, at, [&] {
    const TrainRecipe rr = with_threads(rungs_.recipe(p.rung));
    fs::remove_all(dir / "checkpoint");
    fs::remove_all(Trainer::stable_dir(dir, rr));
    const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, "trial " + std::to_string(t.number) + ", column arch"),
                                              "trial " + std::to_string(t.number));
    Trainer trainer(arch, in_.data.dataset, in_.data.tokenizer, rr, dir);
    trainer.keep_stable(p.rung < rungs_.top());
    trainer.on_step(step_hook("in-promotion"));
    r = timed(sum_.times.train_s, [&] { return trainer.run_from(from); });
    // Stopped by a signal mid-rung: the promotion is given back and the
    // worker exits; another worker (or a rerun) redoes it.
    throw_if_stopped("search: study \"" + in_.opts.study + "\" stopped in " + at + "; rerun the same command to continue");
    // Before the result is committed: once it is, another worker may
    // promote this trial again and write its own checkpoint here.
    fs::remove_all(dir / "checkpoint");
    task = timed(sum_.times.task_s, [&] { return task_metrics(dir, p.rung); });
    with_db([&] {
      Transaction tx(store_.db());
      store_.finish_rung(lease, r);
      if (!task.is_null()) store_.set_task_metrics(t.id, p.rung, task);
      tx.commit();
    });
    heartbeat_.drop();
  });
  if (!done) return;
  std::error_code ec;
  fs::remove_all(from, ec);  // the state this promotion continued; no other promotion needs it
  ++sum_.promoted;
  in_.log(result_line(t, r, p.rung) + task_text(task));
}

// Trains a claimed trial (rung 0).
void StudyWorker::train(const TrialRow& t, const Lease& lease) {
  const fs::path dir = trial_dir(in_.runs_root, in_.opts.study, t.number);
  const std::string at = "trial " + std::to_string(t.number);
  TrainResult r;
  json task;
  const bool done = run_guarded(t, 0, lease, at, [&] {
    fs::remove_all(dir);
    fs::create_directories(dir.parent_path());
    const ArchSpec arch = ArchSpec::from_json(parse_json(t.arch, at + ", column arch"), at);
    Trainer trainer(arch, in_.data.dataset, in_.data.tokenizer, with_threads(rungs_.recipe(0)), dir);
    trainer.keep_stable(rungs_.multi());
    trainer.on_step(step_hook("train-step"));
    r = timed(sum_.times.train_s, [&] { return trainer.run(false); });
    // Stopped by a signal: nothing of the run is kept, the trial is pending again.
    throw_if_stopped("search: study \"" + in_.opts.study + "\" stopped in " + at +
                     "; it goes back to pending: rerun the same command to continue");
    fs::remove_all(dir / "checkpoint");
    task = timed(sum_.times.task_s, [&] { return task_metrics(dir, 0); });
    with_db([&] { store_.commit_result(lease, r, task); });
    heartbeat_.drop();
    fault_.hit("result");
  });
  if (!done) return;
  ++sum_.trained;
  in_.log(result_line(t, r, 0) + task_text(task));
}

bool StudyWorker::claim_waiting() {
  // The leases of this machine's workers that are gone end first.
  std::optional<TrialRow> waiting;
  const std::string token = new_lease_token();
  with_db([&] {
    Transaction tx(store_.db(), Transaction::Lock::rows);
    store_.expire_leases_of(study_.id, [](const std::string& w) { return !worker_alive(w); });
    store_.drop_expired_promotions(study_.id);
    waiting = store_.claim_waiting(study_.id, me_, token);
    tx.commit();
  });
  if (!waiting) return false;
  idle_ms_ = 200;
  const Lease lease{waiting->id, 0, token};
  heartbeat_.hold(lease);
  fault_.hit("claim");
  train(*waiting, lease);
  return true;
}

bool StudyWorker::plan_and_apply() {
  std::vector<TrialRow> trials;
  std::string rng_state;
  with_db([&] {
    trials = store_.trials(study_.id);
    rng_state = store_.get_study(in_.opts.study).rng_state;
  });
  Plan plan = timed(sum_.times.plan_s, [&] { return plan_next(cfg_, rungs_, in_.pricer, trials, rng_state, limits_, where_); });
  if (plan.kind == Plan::Kind::wait) {
    // Many waiting workers must not keep the server busy: back off while idle.
    timed(sum_.times.idle_s, [&] { std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms_)); });
    idle_ms_ = std::min(2 * idle_ms_, 1600);
    return true;
  }
  idle_ms_ = 200;
  const std::string digest = study_digest(trials, rng_state);
  bool applied = false;
  TrialRow claimed;
  const std::string token = new_lease_token();
  with_db([&] {
    applied = false;
    Transaction tx(store_.db());
    if (study_digest(store_.trials(study_.id), store_.get_study(in_.opts.study).rng_state) != digest) return;
    if (plan.kind == Plan::Kind::promote) {
      store_.start_rung(Lease{plan.trial.id, plan.promotion->rung, token}, rungs_.tokens(plan.promotion->rung), me_);
    }
    for (auto t : plan.inserts) {
      if (t.status == "running") {
        t.worker = me_;
        t.lease_token = token;
        claimed = store_.insert(study_.id, t);
      } else {
        store_.insert(study_.id, t);
      }
    }
    if (!plan.rng_state.empty()) store_.set_rng(study_.id, plan.rng_state);
    if (plan.kind == Plan::Kind::stop) store_.set_finished(study_.id, true);
    tx.commit();
    applied = true;
  });
  if (!applied) return true;  // another worker changed the study meanwhile: plan again
  sum_.pruned += plan.pruned;
  sum_.reused += plan.reused;
  for (const auto& line : plan.log) in_.log(line);
  if (plan.kind == Plan::Kind::stop) {
    sum_.complete = true;
    sum_.stop_reason = plan.stop_reason;
    return false;
  }
  if (plan.kind == Plan::Kind::promote) {
    const Lease lease{plan.trial.id, plan.promotion->rung, token};
    heartbeat_.hold(lease);
    fault_.hit("claim");
    promote(plan.trial, *plan.promotion, lease);
  } else if (plan.claims) {
    const Lease lease{claimed.id, 0, token};
    heartbeat_.hold(lease);
    fault_.hit("claim");
    train(claimed, lease);
  }
  return true;
}

SearchSummary StudyWorker::run() {
  for (;;) {
    throw_if_stopped("search: study \"" + in_.opts.study + "\" stopped between trials; rerun the same command to continue");
    if (claim_waiting()) continue;
    if (!plan_and_apply()) break;
  }
  sum_.wall_s = std::chrono::duration<double>(Clock::now() - t0_).count();
  return sum_;
}

}  // namespace flashnas
