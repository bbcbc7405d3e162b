#include "profiler/lut.h"

#include <chrono>
#include <ctime>

#include "common/error.h"
#include "common/version.h"

namespace flashnas {
namespace {
// Binds an entry's key (device and the eight key columns) to parameters 1..9.
void bind_key(Stmt& q, int64_t device, const LutKey& k) {
  q.bind(1, device).bind(2, k.op).bind(3, k.hp).bind(4, k.d_model).bind(5, phase_name(k.phase)).bind(6, k.batch);
  q.bind(7, k.length).bind(8, k.dtype).bind(9, k.runtime);
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

std::string phase_name(Phase p) { return p == Phase::Prefill ? "prefill" : "decode"; }

std::string LutKey::describe() const {
  return op + " " + hp + " d=" + std::to_string(d_model) + " " + phase_name(phase) + " B=" + std::to_string(batch) +
         (phase == Phase::Prefill ? " T=" : " t=") + std::to_string(length) + " " + dtype + " " + runtime;
}

std::string LutKey::series() const {
  return op + " " + hp + " d=" + std::to_string(d_model) + " " + phase_name(phase) + " B=" + std::to_string(batch) + " " +
         dtype + " " + runtime;
}

LutStore::LutStore(const std::filesystem::path& path, Access access) : db_(path, access) {
  // The version first: an older file is refused before anything is added to it.
  require_schema_version(db_, "schema_version", kLutSchemaVersion, "database");
  db_.ensure_tables(
      "CREATE TABLE IF NOT EXISTS devices(id INTEGER PRIMARY KEY, fingerprint TEXT UNIQUE NOT NULL,"
      " info TEXT NOT NULL, created_at TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS lut_entries(device_id INTEGER NOT NULL REFERENCES devices(id), op TEXT NOT NULL,"
      " hp TEXT NOT NULL, d_model INTEGER NOT NULL, phase TEXT NOT NULL, batch INTEGER NOT NULL,"
      " length INTEGER NOT NULL, dtype TEXT NOT NULL, runtime TEXT NOT NULL, median_us REAL NOT NULL,"
      " p10_us REAL NOT NULL, p90_us REAL NOT NULL, cv REAL NOT NULL, count INTEGER NOT NULL,"
      " samples_us TEXT NOT NULL, threads INTEGER NOT NULL, measured_at TEXT NOT NULL, rounds INTEGER NOT NULL,"
      " commit_id TEXT NOT NULL,"
      " PRIMARY KEY(device_id, op, hp, d_model, phase, batch, length, dtype, runtime));"
      "CREATE TABLE IF NOT EXISTS lut_entry_rounds(device_id INTEGER NOT NULL REFERENCES devices(id), op TEXT NOT NULL,"
      " hp TEXT NOT NULL, d_model INTEGER NOT NULL, phase TEXT NOT NULL, batch INTEGER NOT NULL,"
      " length INTEGER NOT NULL, dtype TEXT NOT NULL, runtime TEXT NOT NULL, round INTEGER NOT NULL,"
      " median_us REAL NOT NULL, p10_us REAL NOT NULL, p90_us REAL NOT NULL, cv REAL NOT NULL, count INTEGER NOT NULL,"
      " samples_us TEXT NOT NULL, probe_compute_us REAL NOT NULL, probe_memory_us REAL NOT NULL,"
      " threads INTEGER NOT NULL, commit_id TEXT NOT NULL, measured_at TEXT NOT NULL, at_s REAL NOT NULL,"
      " PRIMARY KEY(device_id, op, hp, d_model, phase, batch, length, dtype, runtime, round));"
      "CREATE TABLE IF NOT EXISTS lut_runs(device_id INTEGER NOT NULL REFERENCES devices(id), role TEXT NOT NULL,"
      " arch_hash TEXT NOT NULL, arch TEXT NOT NULL, workload TEXT NOT NULL, batch INTEGER NOT NULL,"
      " dtype TEXT NOT NULL, runtime TEXT NOT NULL, round INTEGER NOT NULL, total_us REAL NOT NULL,"
      " prefill_us REAL NOT NULL, decode_us REAL NOT NULL, probe_compute_us REAL NOT NULL,"
      " probe_memory_us REAL NOT NULL, commit_id TEXT NOT NULL, measured_at TEXT NOT NULL, at_s REAL NOT NULL,"
      " PRIMARY KEY(device_id, role, arch_hash, workload, dtype, runtime, round));"
      "CREATE TABLE IF NOT EXISTS lut_tables(device_id INTEGER NOT NULL REFERENCES devices(id), dtype TEXT NOT NULL,"
      " runtime TEXT NOT NULL, report TEXT NOT NULL, commit_id TEXT NOT NULL, created_at TEXT NOT NULL,"
      " PRIMARY KEY(device_id, dtype, runtime));"
      "CREATE TABLE IF NOT EXISTS lut_validations(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL"
      " REFERENCES devices(id), report TEXT NOT NULL, created_at TEXT NOT NULL);");
}

int64_t LutStore::add_device(const DeviceInfo& info) {
  const json j = {{"device", info.device},       {"name", info.name},       {"threads", info.threads},
                  {"driver", info.driver},       {"cuda", info.cuda_runtime}, {"torch", info.torch_version},
                  {"build_type", info.build_type}, {"commit", info.commit}};
  Stmt ins(db_, "INSERT OR IGNORE INTO devices(fingerprint, info, created_at) VALUES(?, ?, ?)");
  ins.bind(1, info.fingerprint()).bind(2, j.dump()).bind(3, utc_now()).run();
  return require_device(info);
}

int64_t LutStore::require_device(const DeviceInfo& info) const {
  Stmt q(db_, "SELECT id FROM devices WHERE fingerprint = ?");
  q.bind(1, info.fingerprint());
  if (q.step()) return q.int64(0);
  std::vector<std::string> have;
  Stmt all(db_, "SELECT fingerprint FROM devices ORDER BY id");
  while (all.step()) have.push_back(all.text(0));
  throw InputError(db_.path().string() + ": no latency table for this device (" + info.fingerprint() + ")" +
                   (have.empty() ? "; the database is empty" : "; it holds tables for: " + join_comma(have)) +
                   ". Run flashnas profile on this device, with the same thread count and build.");
}

int64_t LutStore::find_device(const std::string& fingerprint) const {
  std::vector<std::pair<int64_t, std::string>> have;
  Stmt all(db_, "SELECT id, fingerprint FROM devices ORDER BY id");
  while (all.step()) have.emplace_back(all.int64(0), all.text(1));
  std::vector<std::string> names;
  for (const auto& [id, fp] : have) {
    if (fp == fingerprint || (fingerprint.empty() && have.size() == 1)) return id;
    names.push_back(fp);
  }
  if (have.empty()) {
    throw InputError(db_.path().string() + ": holds no latency table; run flashnas profile --space CONFIG --db " +
                     db_.path().string() + " first");
  }
  throw InputError(db_.path().string() + (fingerprint.empty() ? ": holds tables for several devices"
                                                              : ": no latency table for device \"" + fingerprint + "\"") +
                   "; pass --lut-device with one of: " + join_comma(names));
}

json LutStore::device_info(int64_t device) const {
  Stmt q(db_, "SELECT fingerprint, info FROM devices WHERE id = ?");
  q.bind(1, device);
  if (!q.step()) throw Error(db_.path().string() + ": no device with id " + std::to_string(device));
  json j = parse_json(q.text(1), db_.path().string() + ": table devices, device " + std::to_string(device) + ", column info");
  j["fingerprint"] = q.text(0);
  return j;
}

std::optional<LutValue> LutStore::get(int64_t device, const LutKey& k) const {
  Stmt q(db_,
         "SELECT median_us, p10_us, p90_us, cv, count, rounds, commit_id FROM lut_entries WHERE device_id=? AND op=? AND hp=? AND "
         "d_model=? AND phase=? AND batch=? AND length=? AND dtype=? AND runtime=?");
  bind_key(q, device, k);
  if (!q.step()) return std::nullopt;
  return LutValue{q.real(0), q.real(1), q.real(2), q.real(3), q.int64(4), q.int64(5), q.text(6)};
}

void LutStore::put(int64_t device, const LutKey& k, const TimingStats& s, int threads) {
  const std::optional<LutValue> old = get(device, k);
  if (old && old->median_us <= s.median_us) {
    Stmt u(db_,
           "UPDATE lut_entries SET rounds = rounds + 1 WHERE device_id=? AND op=? AND hp=? AND d_model=? AND phase=? AND "
           "batch=? AND length=? AND dtype=? AND runtime=?");
    bind_key(u, device, k);
    u.run();
    return;
  }
  const LutValue v{s.median_us, s.p10_us, s.p90_us, s.cv, s.count, old ? old->rounds + 1 : int64_t(1), git_commit()};
  write_entry(device, k, v, threads, json(s.samples_us).dump());
}

void LutStore::set_entry(int64_t device, const LutKey& k, const LutValue& v, int threads) {
  write_entry(device, k, v, threads, "[]");
}

void LutStore::write_entry(int64_t device, const LutKey& k, const LutValue& v, int threads, const std::string& samples) {
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_entries(device_id, op, hp, d_model, phase, batch, length, dtype, runtime,"
         " median_us, p10_us, p90_us, cv, count, samples_us, threads, measured_at, rounds, commit_id)"
         " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  bind_key(q, device, k);
  q.bind(10, v.median_us).bind(11, v.p10_us).bind(12, v.p90_us).bind(13, v.cv).bind(14, v.count).bind(15, samples);
  q.bind(16, static_cast<int64_t>(threads)).bind(17, utc_now()).bind(18, v.rounds).bind(19, v.commit);
  q.run();
}

void LutStore::put_round(int64_t device, const LutKey& k, int64_t round, const TimingStats& s,
                         const ProbeReading& probe, int threads) {
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_entry_rounds(device_id, op, hp, d_model, phase, batch, length, dtype, runtime,"
         " round, median_us, p10_us, p90_us, cv, count, samples_us, probe_compute_us, probe_memory_us, threads,"
         " commit_id, measured_at, at_s) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  bind_key(q, device, k);
  q.bind(10, round).bind(11, s.median_us).bind(12, s.p10_us);
  q.bind(13, s.p90_us).bind(14, s.cv).bind(15, s.count).bind(16, json(s.samples_us).dump());
  q.bind(17, probe.compute_us).bind(18, probe.memory_us).bind(19, static_cast<int64_t>(threads));
  q.bind(20, git_commit()).bind(21, utc_now()).bind(22, unix_seconds());
  q.run();
}

std::vector<EntryRound> LutStore::rounds(int64_t device, const LutKey& k) const {
  Stmt q(db_,
         "SELECT round, median_us, cv, probe_compute_us, probe_memory_us, at_s FROM lut_entry_rounds WHERE device_id=? AND"
         " op=? AND hp=? AND d_model=? AND phase=? AND batch=? AND length=? AND dtype=? AND runtime=? ORDER BY round");
  bind_key(q, device, k);
  std::vector<EntryRound> out;
  while (q.step()) {
    out.push_back(EntryRound{q.int64(0), q.real(1), q.real(2), ProbeReading{q.real(3), q.real(4)}, q.real(5)});
  }
  return out;
}

std::vector<std::pair<LutKey, std::vector<EntryRound>>> LutStore::all_rounds(int64_t device, const std::string& dtype,
                                                                               const std::string& runtime) const {
  Stmt q(db_,
         "SELECT op, hp, d_model, phase, batch, length, round, median_us, cv, probe_compute_us, probe_memory_us, at_s"
         " FROM lut_entry_rounds WHERE device_id=? AND dtype=? AND runtime=?"
         " ORDER BY op, hp, d_model, phase, batch, length, round");
  q.bind(1, device).bind(2, dtype).bind(3, runtime);
  std::vector<std::pair<LutKey, std::vector<EntryRound>>> out;
  while (q.step()) {
    LutKey k{q.text(0), q.text(1), q.int64(2), q.text(3) == "prefill" ? Phase::Prefill : Phase::Decode,
             q.int64(4), q.int64(5), dtype, runtime};
    if (out.empty() || out.back().first.describe() != k.describe()) out.emplace_back(k, std::vector<EntryRound>{});
    out.back().second.push_back(
        EntryRound{q.int64(6), q.real(7), q.real(8), ProbeReading{q.real(9), q.real(10)}, q.real(11)});
  }
  return out;
}

void LutStore::put_run(int64_t device, const RunRow& r) {
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_runs(device_id, role, arch_hash, arch, workload, batch, dtype, runtime, round,"
         " total_us, prefill_us, decode_us, probe_compute_us, probe_memory_us, commit_id, measured_at, at_s)"
         " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, device).bind(2, r.role).bind(3, r.arch_hash).bind(4, r.arch).bind(5, r.workload).bind(6, r.batch);
  q.bind(7, r.dtype).bind(8, r.runtime).bind(9, r.round).bind(10, r.total_us).bind(11, r.prefill_us);
  q.bind(12, r.decode_us).bind(13, r.probe.compute_us).bind(14, r.probe.memory_us);
  q.bind(15, r.commit.empty() ? git_commit() : r.commit).bind(16, utc_now());
  q.bind(17, r.at_s > 0 ? r.at_s : unix_seconds());
  q.run();
}

std::vector<RunRow> LutStore::runs(int64_t device, const std::string& dtype, const std::string& runtime) const {
  Stmt q(db_,
         "SELECT role, arch_hash, arch, workload, batch, round, total_us, prefill_us, decode_us, probe_compute_us,"
         " probe_memory_us, commit_id, at_s FROM lut_runs WHERE device_id=? AND dtype=? AND runtime=?"
         " ORDER BY role, arch_hash, workload, round");
  q.bind(1, device).bind(2, dtype).bind(3, runtime);
  std::vector<RunRow> out;
  while (q.step()) {
    RunRow r;
    r.role = q.text(0);
    r.arch_hash = q.text(1);
    r.arch = q.text(2);
    r.workload = q.text(3);
    r.batch = q.int64(4);
    r.dtype = dtype;
    r.runtime = runtime;
    r.round = q.int64(5);
    r.total_us = q.real(6);
    r.prefill_us = q.real(7);
    r.decode_us = q.real(8);
    r.probe = ProbeReading{q.real(9), q.real(10)};
    r.commit = q.text(11);
    r.at_s = q.real(12);
    out.push_back(std::move(r));
  }
  return out;
}

void LutStore::set_table_report(int64_t device, const std::string& dtype, const std::string& runtime,
                                const json& report) {
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_tables(device_id, dtype, runtime, report, commit_id, created_at)"
         " VALUES(?,?,?,?,?,?)");
  q.bind(1, device).bind(2, dtype).bind(3, runtime).bind(4, report.dump()).bind(5, git_commit()).bind(6, utc_now());
  q.run();
}

std::optional<json> LutStore::table_report(int64_t device, const std::string& dtype, const std::string& runtime) const {
  Stmt q(db_, "SELECT report, commit_id, created_at FROM lut_tables WHERE device_id=? AND dtype=? AND runtime=?");
  q.bind(1, device).bind(2, dtype).bind(3, runtime);
  if (!q.step()) return std::nullopt;
  json j;
  try {
    j = json::parse(q.text(0));
  } catch (const json::exception& e) {
    throw InputError(db_.path().string() + ": table lut_tables, the report of " + dtype + "/" + runtime +
                     " is damaged JSON: " + e.what());
  }
  j["commit"] = q.text(1);
  j["created_at"] = q.text(2);
  return j;
}

std::vector<std::pair<LutKey, LutValue>> LutStore::entries(int64_t device, const std::string& dtype,
                                                           const std::string& runtime) const {
  Stmt q(db_,
         "SELECT op, hp, d_model, phase, batch, length, median_us, p10_us, p90_us, cv, count, rounds, commit_id"
         " FROM lut_entries WHERE device_id=? AND dtype=? AND runtime=?");
  q.bind(1, device).bind(2, dtype).bind(3, runtime);
  std::vector<std::pair<LutKey, LutValue>> out;
  while (q.step()) {
    LutKey k{q.text(0), q.text(1), q.int64(2), q.text(3) == "prefill" ? Phase::Prefill : Phase::Decode,
             q.int64(4), q.int64(5), dtype, runtime};
    LutValue v{q.real(6), q.real(7), q.real(8), q.real(9), q.int64(10), q.int64(11), q.text(12)};
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

std::vector<int64_t> LutStore::lengths(int64_t device, const LutKey& k) const {
  Stmt q(db_,
         "SELECT length FROM lut_entries WHERE device_id=? AND op=? AND hp=? AND d_model=? AND phase=? AND "
         "batch=? AND dtype=? AND runtime=? ORDER BY length");
  q.bind(1, device).bind(2, k.op).bind(3, k.hp).bind(4, k.d_model).bind(5, phase_name(k.phase)).bind(6, k.batch);
  q.bind(7, k.dtype).bind(8, k.runtime);
  std::vector<int64_t> out;
  while (q.step()) out.push_back(q.int64(0));
  return out;
}

int64_t LutStore::count(int64_t device) const {
  Stmt q(db_, "SELECT COUNT(*) FROM lut_entries WHERE device_id=?");
  q.bind(1, device);
  q.step();
  return q.int64(0);
}

void LutStore::add_validation(int64_t device, const json& report) {
  Stmt q(db_, "INSERT INTO lut_validations(device_id, report, created_at) VALUES(?, ?, ?)");
  q.bind(1, device).bind(2, report.dump()).bind(3, utc_now()).run();
}

std::vector<json> LutStore::validations(int64_t device) const {
  Stmt q(db_, "SELECT report FROM lut_validations WHERE device_id = ? ORDER BY id");
  q.bind(1, device);
  std::vector<json> out;
  while (q.step()) out.push_back(parse_json(q.text(0), db_.path().string() + ": table lut_validations, column report"));
  return out;
}

}  // namespace flashnas
