// One worker's loop over a study, the second half of run_search
// (search/runner.h): claim a waiting trial, or plan the study's next step
// (search/plan.h: a new candidate, a promotion, wait, stop) and apply it if
// the study is unchanged; train or promote the trial under a lease (a
// heartbeat renews it) with the study's error ladder; log each result with
// the study's progress and ETA; until the study is complete or stopped.
#pragma once
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/fault.h"
#include "search/config.h"
#include "search/fidelity.h"
#include "search/plan.h"
#include "search/pricer.h"
#include "search/runner.h"
#include "study/heartbeat.h"
#include "study/study_store.h"
#include "train/task_eval.h"
#include "train/trainer.h"
#include "train/training_data.h"

namespace flashnas {

// What run_search set up and the worker only reads (the pricer caches).
struct WorkerInputs {
  const SearchConfig& cfg;                    // with the seeded hand designs
  const SearchOptions& opts;
  const Rungs& rungs;
  Pricer& pricer;
  const TrainingData& data;
  const std::vector<TaskRecord>& task_eval;  // held-out records for task metrics; empty: none
  std::filesystem::path runs_root;            // <root>/<study>/trial-<n>/ (trial_dir)
  std::function<void(const std::string&)> log;
};

class StudyWorker {
 public:
  using Clock = std::chrono::steady_clock;
  // Opens the study opts.study in opts.db, creating it with the config and
  // the latency table's record `lut_info` (device `device`) if new.
  StudyWorker(const WorkerInputs& in, int64_t device, const json& lut_info, Clock::time_point t0);
  StudyWorker(const StudyWorker&) = delete;
  StudyWorker& operator=(const StudyWorker&) = delete;

  // Works until the study is complete; throws what stops it (a signal, bad
  // input, a full disk, the database gone for longer than opts.db_retry_s).
  SearchSummary run();

 private:
  void with_db(const std::function<void()>& work);
  // Task metrics of the model a finished run left in `dir` at `rung` (null:
  // none there: no task data, or a rung below the top with task_eval_rungs "top").
  json task_metrics(const std::filesystem::path& dir, int rung);
  // "trial N [...] genome | ms | params | loss (at rung r) | best at that rung | progress, ETA".
  std::string result_line(const TrialRow& t, const TrainResult& r, int rung);
  std::function<void(int64_t)> step_hook(const char* point);
  TrainRecipe with_threads(TrainRecipe r) const;
  void give_back(const Lease& l);
  bool run_guarded(const TrialRow& t, int rung, const Lease& lease, const std::string& at,
                   const std::function<void()>& work);
  void promote(const TrialRow& t, const Promotion& p, const Lease& lease);
  void train(const TrialRow& t, const Lease& lease);
  // 1. A trial waiting to be claimed (pending, or its lease expired): trains
  //    it and returns true; false when there is none.
  bool claim_waiting();
  // 2. The proposer's step, planned from a snapshot and applied only if the
  //    study is still as it was. False when the study is complete.
  bool plan_and_apply();

  const WorkerInputs in_;
  const SearchConfig& cfg_;
  const Rungs& rungs_;
  const Clock::time_point t0_;
  StudyStore store_;
  SearchSummary sum_;
  StudyRow study_;
  const std::string me_;
  const PlanLimits limits_;
  const std::string where_;
  Fault fault_;
  Heartbeat heartbeat_;
  const int64_t planned_;
  int64_t mine_ = 0;   // tokens this worker trained
  int idle_ms_ = 200;  // the idle back-off: 0.2 s, doubling to 1.6 s
};

}  // namespace flashnas
