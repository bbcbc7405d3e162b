// The study store (docs/design.md, "Study"): studies and their trials in SQLite,
// in the same database file as the LUT by default. WAL mode, one
// transaction per state change (callers hold a Transaction around each
// claim or result), schema version in meta("study_schema_version").
//
// Tables:
//   studies(id, name UNIQUE, config JSON, config_hash, seed, rng_state,
//           lut_device, lut_table (JSON: the table and its verdict), created_at, finished_at)
//   trials(id, study_id, number, slot, cycle, origin, parent, genome, arch JSON,
//          hash, d_model, status, reason, predicted JSON {budget: ms}, latency_ms,
//          params, loss, bpb, reused_from, worker, created_at, started_at,
//          finished_at, train_s)
//     number: order of creation in the study (pruned candidates included);
//     slot: order among candidates that passed the budgets (NULL when pruned);
//     status: pending | running | done | failed | pruned;
//     latency_ms: the first budget's predicted latency; loss in nats/token,
//     bpb in bits/byte (validation, after the short run), at rung `rung`:
//     the highest rung the trial finished (NULL before the first).
//   trial_rungs(trial_id, rung, tokens, status running|done|failed, worker,
//               loss, bpb, train_s, reason, started_at, finished_at)
//     one row per rung a trial was trained to (a one-fidelity study has rung 0
//     only); a promotion in flight is a 'running' row above the trial's rung.
//   trial_curves(trial_id, rung, step, tokens, train_loss, val_loss, lr)
//     the whole curve of the run that ended at that rung.
//   trial_task(trial_id, rung, metrics JSON)
//     task data only: the trained model's task metrics at that rung
//     (train/task_eval.h, on the study's held-out records). An additive
//     table: version 3 files without it gain it on the next write.
// Leases (version 4): a trial in training (status running) and a promotion
// in flight (a running trial_rungs row) carry lease_token, a random token
// of the worker that holds it, and lease_expires, seconds since 1970 on the
// database's clock. The worker renews it by heartbeat (renew); when it
// expires, the next worker reclaims the trial (claim_waiting) or drops the
// promotion for the proposer to make again (drop_expired_promotions).
// Every result is written only with the token it was claimed with:
// LeaseLost otherwise, so a worker that lost its lease cannot overwrite the
// new holder's result.
// Migrations are explicit, one function per step, run by the first writing
// command in one transaction: version 2 to 3 (trials become rung 0; SQLite
// only), 3 to 4 (lease columns). A reading command reads version 3 as it is.
#pragma once
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "common/db.h"
#include "common/error.h"
#include "train/train_result.h"

namespace flashnas {

inline constexpr int kStudySchemaVersion = 4;

// A result written without the lease it needs: another worker holds the
// trial (or promotion) now, or it is no longer in flight.
class LeaseLost : public Error {
 public:
  using Error::Error;
};

// A trial (rung 0) or promotion (rung >= 1) held by a worker.
struct Lease {
  int64_t trial_id = 0;
  int rung = 0;
  std::string token;
};

// 128 random bits as 32 hex digits.
std::string new_lease_token();

struct RungRow {
  int rung = 0;
  int64_t tokens = 0;
  std::string status, worker, reason;  // running | done | failed
  double loss = NAN, bpb = NAN, train_s = NAN;
  std::string finished_at;  // UTC, ISO 8601 ("" while running)
};

struct TrialRow {
  int64_t id = 0, number = 0;
  std::optional<int64_t> slot, cycle, parent, reused_from;
  std::string origin;  // init | random | mutation
  std::string genome, arch, hash, status, reason, worker;
  std::string lease_token;     // insert: the lease a running trial is created with
  int64_t d_model = 0, params = 0;
  json predicted = json::object();  // budget name -> predicted ms
  double latency_ms = NAN, loss = NAN, bpb = NAN, train_s = NAN;
  int rung = -1;               // highest finished rung (-1: none); loss and bpb are its
  json task;                   // task metrics at that rung (null: none recorded)
  std::vector<RungRow> rungs;  // by rung

  // The loss at rung r (NaN when the trial has not finished it).
  double loss_at(int r) const;
  const RungRow* rung_row(int r) const;
};

struct StudyRow {
  int64_t id = 0;
  std::string name, config_hash, rng_state;
  json config;
  uint64_t seed = 0;
  int64_t lut_device = 0;
  json lut_table;  // the latency table the study priced with: database, device, verdict, when and by which build
  bool finished = false;
};

class StudyStore {
 public:
  // Opens or creates the tables; InputError when the file has another study
  // schema version. Access::read_only writes nothing (a file without studies
  // reads as holding none).
  StudyStore(const std::filesystem::path& path, Access access);
  StudyStore(const std::filesystem::path& path, bool create)
      : StudyStore(path, create ? Access::create : Access::read_write) {}

  // The study `name`, created with this config when absent (atomic: workers
  // racing to create it, on any host, get one study). An existing study
  // must have been created with the same config (by hash): InputError otherwise.
  StudyRow open_study(const std::string& name, const json& config, uint64_t seed, int64_t lut_device,
                      const json& lut_table);
  // InputError listing the studies in the file when `name` is absent.
  StudyRow get_study(const std::string& name) const;
  std::vector<std::string> study_names() const;
  void set_rng(int64_t study, const std::string& state);
  void set_finished(int64_t study, bool finished);

  std::vector<TrialRow> trials(int64_t study) const;
  std::optional<TrialRow> trial(int64_t study, int64_t number) const;
  // Inserts a trial (id and number are assigned); returns it. A running
  // trial is created under a lease: t.lease_token, for lease_seconds().
  TrialRow insert(int64_t study, TrialRow t);
  // Rung 0 (the first training of a trial) finished or failed, written with
  // the lease's token (LeaseLost when it no longer holds the trial; writing
  // the same result again with it is harmless).
  void finish(const Lease& l, const TrainResult& r);
  // finish and, when `task` is not null, the task metrics, as one
  // transaction of its own (the caller holds none). On PostgreSQL, without
  // task metrics, that is one statement in one round trip: a result needs no
  // writer lock (a plan that did not see it is one made just before it).
  void commit_result(const Lease& l, const TrainResult& r, const json& task);
  // The lease's run failed: the trial (rung 0) or its promotion (rung >= 1).
  // LeaseLost when the lease is no longer held.
  void fail(const Lease& l, const std::string& reason, double train_s);
  // Promotions: a trial continued to rung r >= 1 (trial_rungs rows), under the lease.
  void start_rung(const Lease& l, int64_t tokens, const std::string& worker);
  void finish_rung(const Lease& l, const TrainResult& r);

  // Leases (study/study_leases.cpp). How long a lease lasts without renewal.
  double lease_seconds() const { return lease_s_; }
  void set_lease_seconds(double s) { lease_s_ = s; }
  // In a Transaction::Lock::rows transaction: takes the study's first
  // waiting trial by slot (pending, or running with its lease expired) for
  // `worker` under a new lease with `token`; its curve and rungs are
  // cleared. PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED, so workers
  // claiming at once take different trials.
  std::optional<TrialRow> claim_waiting(int64_t study, const std::string& worker, const std::string& token);
  // Ends the leases of in-flight work whose worker `gone` says has exited
  // (a process on this machine), so they are reclaimed at once instead of
  // when they expire. Returns how many.
  int expire_leases_of(int64_t study, const std::function<bool(const std::string& worker)>& gone);
  // Removes the running rung rows (promotions) whose lease expired, with
  // their curves: the proposer decides the promotion again. Returns how many.
  int drop_expired_promotions(int64_t study);
  // Extends the lease by lease_seconds() from now; false when it is lost.
  bool renew(const Lease& l);
  // Gives the lease back: a trial goes back to pending, a promotion's row is
  // removed. Nothing happens when the lease is already lost.
  void release(const Lease& l);
  // In-flight work: running trials and promotions, with their lease's
  // seconds left (negative: expired). For tests and `study` reports.
  struct InFlight {
    int64_t trial_number = 0;
    int rung = 0;
    std::string worker;
    double seconds_left = 0;
  };
  std::vector<InFlight> in_flight(int64_t study) const;
  // Task metrics of a trial's model at `rung` (replaces earlier ones).
  void set_task_metrics(int64_t trial_id, int rung, const json& metrics);
  // The curve of the run that ended at `rung` (-1: the trial's highest).
  std::vector<CurvePoint> curve(int64_t trial_id, int rung = -1) const;

  Db& db() { return db_; }

 private:
  std::vector<TrialRow> load_trials(int64_t study, int64_t number) const;
  void write_curve(int64_t trial_id, int64_t rung, const std::vector<CurvePoint>& curve);
  mutable Db db_;
  double lease_s_ = 60;
};

// A study at a glance (`flashnas study status`): trials by status, the work
// in flight with its leases, and the checks a crash must never break.
struct StudyStatus {
  bool finished = false;
  std::map<std::string, int64_t> by_status;      // pending | running | done | failed | pruned
  std::vector<StudyStore::InFlight> in_flight;
  int64_t trained_without_curve = 0;             // done trials (and rungs) whose curve is missing
  int64_t trained_twice = 0;                     // trained (not reused) architectures that appear twice
  json to_json() const;
};
StudyStatus study_status(const std::string& db, const std::string& study);

}  // namespace flashnas
