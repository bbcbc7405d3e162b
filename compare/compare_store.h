// Where a comparison (flashnas compare, compare/compare.h) keeps its work: in
// the study's database, beside the study's trials, on SQLite or PostgreSQL
// alike (common/db.h). Tables (meta key compare_schema_version = 1):
//   comparisons(id, study_id, name, config JSON, config_hash, created_at)
//     UNIQUE(study_id, name); config: the recipe, seeds, learning rates,
//     rounds and every budget's contenders (labels and architecture hashes):
//     a rerun with other settings, or of a study whose picks changed, is
//     refused by name.
//   compare_contenders(comparison_id, budget, label, kind, arch_hash, arch
//     JSON, description, predicted_ms (NULL: not priced), params, note, pos)
//   compare_runs(id, comparison_id, arch_hash, phase, lr, seed, tokens,
//     recipe JSON, status, worker, lease_token, lease_expires, val_loss
//     (nats/token), bpb (bits/byte), task JSON, curve JSON, train_s, reason,
//     finished_at) UNIQUE(comparison_id, arch_hash, phase, lr, seed)
//     phase: "lr" (a short run per learning rate of the grid), "final" (the
//     retraining, one per seed), "measure" (one row, arch_hash "*": the
//     measurement of every contender, leased like a run so that one
//     process measures while nothing of the comparison trains).
//     status: pending | running | done | failed.
//   compare_latency(comparison_id, arch_hash, workload, round, median_us,
//     p10_us, p90_us, samples JSON (microseconds, in the order taken),
//     device) PRIMARY KEY(comparison_id, arch_hash, workload, round)
//   compare_speed(comparison_id, arch_hash, workload, round, probe_us,
//     reference_us) PRIMARY KEY as compare_latency: the machine-speed probe
//     (profiler/probe.h) read around that measurement (the mean index of the
//     readings before and after, microseconds) and the latency table's
//     reference index; a measurement divided by probe_us / reference_us is at
//     the speed the table was profiled at. Added beside compare_latency (no
//     version change): a database from before it has no rows there, and its
//     measurements are reported as taken.
// Runs are claimed under leases exactly as trials are (study/study_store.h):
// a running row carries a random token and an expiry on the database's
// clock, renewed by heartbeat; an expired one is claimed again; results are
// written only with the token.
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "common/db.h"
#include "common/json_io.h"
#include "search/baselines.h"
#include "study/study_store.h"

namespace flashnas {

inline constexpr int kCompareSchemaVersion = 1;

struct ComparisonRow {
  int64_t id = 0, study_id = 0;
  std::string name, config_hash, created_at;
  json config;
};

struct StoredContender {
  std::string budget, label, kind, arch_hash, description, note;
  json arch;
  std::optional<double> predicted_ms;
  int64_t params = 0;
};

struct CompareRun {
  int64_t id = 0;
  std::string arch_hash, phase;  // phase: lr | final | measure
  double lr = 0;
  int64_t seed = 0, tokens = 0;
  json recipe;
  std::string status = "pending", worker, reason;
  double val_loss = NAN, bpb = NAN, train_s = NAN;
  json task, curve;  // null when none
};

struct LatencyRow {
  std::string arch_hash, workload, device;
  int round = 0;
  double median_us = 0, p10_us = 0, p90_us = 0;
  std::vector<double> samples_us;
  // The probe around this measurement and the table's reference (both
  // microseconds; NaN: not read, or a table without a probe reference).
  double probe_us = NAN, reference_us = NAN;
  // probe_us / reference_us (> 1: the machine ran slower than when the table
  // was profiled); NaN when either is unknown.
  double speed_ratio() const {
    return probe_us > 0 && reference_us > 0 ? probe_us / reference_us : NAN;
  }
};

class CompareStore {
 public:
  // Opens the tables (creating them unless read-only).
  CompareStore(const std::string& db, Access access);

  // The comparison `name` of study `study_id`, created with `config` when
  // absent (workers racing to create it get one). InputError when it exists
  // with another config (by hash), saying what differs.
  ComparisonRow open(int64_t study_id, const std::string& name, const json& config);
  // nullopt when absent.
  std::optional<ComparisonRow> find(int64_t study_id, const std::string& name) const;
  std::vector<std::string> names(int64_t study_id) const;

  // Stores a budget's contenders (rows already there are kept), in the
  // order given, after those of budgets with a lower `budget_index`.
  void put_contenders(int64_t cmp, int budget_index, const std::string& budget, const std::vector<Contender>& cs);
  std::vector<StoredContender> contenders(int64_t cmp) const;

  // Adds a pending run unless one with the same (arch_hash, phase, lr, seed) exists.
  void add_run(int64_t cmp, const CompareRun& r);
  std::vector<CompareRun> runs(int64_t cmp) const;

  // In a Transaction::Lock::rows transaction: takes the first waiting run
  // (pending, or running with its lease expired) by id under a new lease;
  // `measure` takes the measurement row, and only once no training run is
  // waiting or running.
  std::optional<CompareRun> claim(int64_t cmp, const std::string& worker, const std::string& token, bool measure);
  // A finished run of another comparison in the database on the same
  // training data (its config's "data") with the same architecture, phase,
  // learning rate, seed, tokens and recipe: its result is this run's
  // (training is deterministic for a fixed recipe and thread count).
  // nullopt when none.
  std::optional<CompareRun> same_run_elsewhere(int64_t cmp, const CompareRun& r) const;
  // Results, written only under the lease (LeaseLost otherwise).
  void finish(const Lease& l, const TrainResult& r, const json& task);
  // The result of `from` (same_run_elsewhere) as this run's, noting where it came from.
  void finish_reused(const Lease& l, const CompareRun& from);
  void finish_measure(const Lease& l, double wall_s);
  void fail(const Lease& l, const std::string& reason, double wall_s);
  // The run goes back to pending (nothing happens when the lease is lost).
  void release(const Lease& l);
  bool renew(const Lease& l) { return renew_compare_lease(db_, l, lease_s_); }
  static bool renew_compare_lease(Db& db, const Lease& l, double lease_s);
  double lease_seconds() const { return lease_s_; }
  void set_lease_seconds(double s) { lease_s_ = s; }

  // One measurement round of one contender on one workload (replaces a row there).
  void put_latency(int64_t cmp, const LatencyRow& r);
  std::vector<LatencyRow> latency(int64_t cmp) const;

  Db& db() { return db_; }

 private:
  mutable Db db_;
  double lease_s_ = 60;
};

}  // namespace flashnas
