// One search worker: claims the study's next trial under a lease (a trial
// waiting to be claimed, or a new one the proposer plans outside any
// transaction, search/plan.h), short-trains it outside any transaction while
// a heartbeat renews the lease (study/heartbeat.h), and records the result
// in another transaction, checked against the lease's token. Any number of
// workers (processes, on any number of machines) may run on one study at
// once; a worker killed at any moment loses at most its work in flight,
// which the next worker takes over when its lease expires (at once when the
// worker ran on the same machine and its process is gone). A database that
// goes away mid-study (a PostgreSQL restart) is waited for, up to
// db_retry_s.
//
// Trial run folders: <db>.runs/<study>/trial-<number>/ (model.safetensors,
// config.json, curve.csv of the highest rung finished; the resumable
// checkpoint is removed when done; with fidelities, stable-<tokens>/ holds the
// state a promotion continues from, search/fidelity.h).
#pragma once
#include <filesystem>
#include <functional>
#include <string>

#include "common/json_io.h"
#include "search/config.h"
#include "study/study_store.h"

namespace flashnas {

struct SearchOptions {
  std::filesystem::path db;      // study database
  std::filesystem::path lut_db;  // LUT database (default: db)
  std::filesystem::path artifacts;  // run folders (default: <db>.runs; required with a PostgreSQL db)
  std::string study;
  std::string lut_device;        // LUT device fingerprint; empty: the only one stored
  int threads = 0;               // training threads; 0: LibTorch default
  bool accept_unreliable_lut = false;  // search with a table whose verdict is unreliable (recorded in the study)
  double lease_s = 60;     // a lease's length without renewal (heartbeats every third of it)
  double db_retry_s = 300; // how long a database that went away is waited for before the worker gives up
  bool create_only = false; // check everything and create the study, train nothing (flashnas study create)
};

// Where a worker's wall time went: training runs (their evaluations
// included), task metrics, proposing (plan_next: the surrogate, pricing),
// the database (every store step, retries included), waiting for other
// workers' trials, and the rest (run folders, logs). The overhead is what is
// neither training, evaluation nor waiting.
struct SearchTimes {
  double train_s = 0, task_s = 0, plan_s = 0, db_s = 0, idle_s = 0;
  double overhead_s(double wall_s) const { return wall_s - train_s - task_s - idle_s; }
  json to_json(double wall_s) const;
  // "training 95.1%, task metrics 0.0%, proposing 1.2%, database 0.8%, waiting 0.0%, other 2.9%: overhead 4.9%".
  std::string describe(double wall_s) const;
};

struct SearchSummary {
  int64_t trained = 0, failed = 0, reused = 0, pruned = 0;  // by this worker
  int64_t promoted = 0;                                      // promotions finished by this worker
  bool complete = false;                                     // the study has all its trials
  std::string stop_reason;                                   // why no more trials were created, when not by count
  double wall_s = 0;
  SearchTimes times;
};

// Runs until the study is complete. `log` receives one line per finished trial.
// Creates the study tables in `db` (before several workers race to).
void create_study_tables(const std::string& db);

SearchSummary run_search(const SearchConfig& cfg, const SearchOptions& opts,
                         const std::function<void(const std::string&)>& log);

// A stateless worker's set-up (`flashnas worker`): the config the study
// `study` in `db` was created with, and the latency table it priced with
// (the database and device fingerprint it recorded; whether it accepted an
// unreliable one). InputError naming the database when the study is absent,
// and when its training data (a relative path is read from the current
// folder) cannot be found.
struct WorkerSetup {
  SearchConfig cfg;
  SearchOptions opts;
};
WorkerSetup worker_setup(const std::string& db, const std::string& study, const std::filesystem::path& artifacts,
                         bool check_data = true);

// <root>/<study>/trial-<number>/, root from artifacts_root (common/db.h).
std::filesystem::path trial_dir(const std::filesystem::path& root, const std::string& study, int64_t number);

// This process as a worker: "host:pid:start:pid-namespace", and whether
// such a worker still runs (true for one this machine cannot judge: another
// host's, or another PID namespace's).
std::string worker_identity();
bool worker_alive(const std::string& identity);

}  // namespace flashnas
