// The latency look-up table (LUT) in SQLite.
//
// An entry times one pre-norm residual sublayer (RMSNorm + operator + residual
// add), or the model's ends (embedding + final norm + LM head, op "embed_head"),
// in the phase it is used in:
//   prefill: one forward over a sequence of `length` tokens from an empty state
//   decode:  eager: one step at context `length` (tokens already in the
//            state); cudagraph: one graph-replayed step of a cache of capacity
//            `length`, which it reads whole whatever the position
// Keys: device fingerprint, operator, canonical hyperparameters, d_model,
// phase, batch, length, dtype, runtime ("eager" | "cudagraph"); the LibTorch
// version and thread count are part of the fingerprint. Values in
// microseconds (the _us columns), with p10/p90, sample count and CV.
//
// Tables: meta (schema_version), devices (fingerprint, info JSON);
//   lut_entry_rounds: every measurement round of an entry, raw, with the
//     machine-speed probe read around it (profiler/probe.h);
//   lut_entries: the table itself, one value per entry: its rounds
//     normalised to the table's reference speed and combined (see
//     profiler/session.h), or a direct put();
//   lut_runs: whole-model measurements ("fit" and "validate" roles), per
//     round, with their probe readings;
//   lut_tables: per (device, dtype, runtime) the profile report: the probe
//     reference, the drift seen, the latency models per batch size, the
//     validation, the verdict;
//   lut_validations: every validation report, oldest first.
// Every measured row carries the flashnas commit that measured it. A
// database of another schema version is refused.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/device.h"
#include "common/json_io.h"
#include "common/db.h"
#include "profiler/probe.h"
#include "profiler/timing.h"

namespace flashnas {

inline constexpr int kLutSchemaVersion = 3;

enum class Phase { Prefill, Decode };
std::string phase_name(Phase p);

struct LutKey {
  std::string op;       // operator type, or "embed_head"
  std::string hp;       // canonical hyperparameters (compact JSON)
  int64_t d_model = 0;
  Phase phase = Phase::Decode;
  int64_t batch = 1;
  int64_t length = 0;   // prefill: sequence length; decode: context
  std::string dtype = "float32";
  std::string runtime = "eager";

  std::string describe() const;  // "attn {...} d=256 decode B=1 t=1024 float32 eager"
  std::string series() const;    // describe() without the length: the entries interpolated together
};

struct LutValue {
  double median_us = 0, p10_us = 0, p90_us = 0, cv = 0;
  int64_t count = 0;
  int64_t rounds = 1;  // measurement rounds behind the value
  std::string commit;  // the flashnas build that measured it
};

// One measurement round of an entry, as stored in lut_entry_rounds.
struct EntryRound {
  int64_t round = 0;
  double median_us = 0, cv = 0;
  ProbeReading probe;
  double at_s = 0;  // when it was measured (Unix time, seconds)
};

// One round of a whole-model measurement (lut_runs).
struct RunRow {
  std::string role;      // "fit" (fits the latency model) or "validate" (held out)
  std::string arch_hash;
  std::string arch;      // ArchSpec JSON
  std::string workload;  // Workload::str()
  int64_t batch = 1;
  std::string dtype, runtime;
  int64_t round = 0;
  double total_us = 0, prefill_us = 0, decode_us = 0;
  ProbeReading probe;
  std::string commit;
  double at_s = 0;  // when it was measured (Unix time, seconds)
};

class LutStore {
 public:
  // Opens or creates the database; InputError when it has another schema
  // version. Access::read_only writes nothing.
  LutStore(const std::filesystem::path& path, Access access);
  LutStore(const std::filesystem::path& path, bool create) : LutStore(path, create ? Access::create : Access::read_write) {}

  // The id of this device's fingerprint, inserting it when new.
  int64_t add_device(const DeviceInfo& info);
  // The id of a stored fingerprint; InputError listing the stored ones otherwise
  // (a table built on one device is never used for another).
  int64_t require_device(const DeviceInfo& info) const;

  // The id of the stored fingerprint `fingerprint`, or of the only stored one
  // when it is empty; InputError listing the stored fingerprints otherwise.
  int64_t find_device(const std::string& fingerprint) const;
  // The stored description (JSON) of a device id.
  json device_info(int64_t device) const;
  std::optional<LutValue> get(int64_t device, const LutKey& key) const;
  // Records one measurement round of an entry: a new entry, or for a stored
  // one, the round count goes up and the values are replaced when this
  // round's median is lower. On a shared machine, interference only adds
  // time, so the fastest of rounds spread out in time estimates the
  // uncontended latency; the whole-model measurements it is validated
  // against use the same rule.
  void put(int64_t device, const LutKey& key, const TimingStats& stats, int threads);
  // Replaces an entry's table value (finalising a profile run).
  void set_entry(int64_t device, const LutKey& key, const LutValue& v, int threads);

  // Rounds of entries and whole-model runs (resumable profiling).
  void put_round(int64_t device, const LutKey& key, int64_t round, const TimingStats& stats, const ProbeReading& probe,
                 int threads);
  std::vector<EntryRound> rounds(int64_t device, const LutKey& key) const;
  // Every stored round of (dtype, runtime), grouped by entry.
  std::vector<std::pair<LutKey, std::vector<EntryRound>>> all_rounds(int64_t device, const std::string& dtype,
                                                                     const std::string& runtime) const;
  void put_run(int64_t device, const RunRow& row);
  std::vector<RunRow> runs(int64_t device, const std::string& dtype, const std::string& runtime) const;

  // The profile report of (device, dtype, runtime): probe reference, drift,
  // latency models, validation and verdict (see profiler/finalize.h).
  void set_table_report(int64_t device, const std::string& dtype, const std::string& runtime, const json& report);
  std::optional<json> table_report(int64_t device, const std::string& dtype, const std::string& runtime) const;
  // Every stored entry of a device for (dtype, runtime).
  std::vector<std::pair<LutKey, LutValue>> entries(int64_t device, const std::string& dtype,
                                                   const std::string& runtime) const;
  // Lengths stored for a key with its length ignored, ascending.
  std::vector<int64_t> lengths(int64_t device, const LutKey& key) const;
  int64_t count(int64_t device) const;

  void add_validation(int64_t device, const json& report);
  // Stored validation reports of a device, oldest first.
  std::vector<json> validations(int64_t device) const;

  Db& db() { return db_; }

 private:
  void write_entry(int64_t device, const LutKey& key, const LutValue& v, int threads, const std::string& samples);
  mutable Db db_;
};

}  // namespace flashnas
