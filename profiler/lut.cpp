#include "profiler/lut.h"

#include <chrono>
#include <ctime>

#include "common/error.h"

namespace flashnas {

std::string phase_name(Phase p) { return p == Phase::Prefill ? "prefill" : "decode"; }

std::string LutKey::describe() const {
  return op + " " + hp + " d=" + std::to_string(d_model) + " " + phase_name(phase) + " B=" + std::to_string(batch) +
         (phase == Phase::Prefill ? " T=" : " t=") + std::to_string(length) + " " + dtype + " " + runtime;
}

LutStore::LutStore(const std::filesystem::path& path, bool create) : db_(path, create) {
  // The version first: an older file is refused before anything is added to it.
  require_schema_version(db_, "schema_version", kLutSchemaVersion, "database");
  db_.exec(
      "CREATE TABLE IF NOT EXISTS devices(id INTEGER PRIMARY KEY, fingerprint TEXT UNIQUE NOT NULL,"
      " info TEXT NOT NULL, created_at TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS lut_entries(device_id INTEGER NOT NULL REFERENCES devices(id), op TEXT NOT NULL,"
      " hp TEXT NOT NULL, d_model INTEGER NOT NULL, phase TEXT NOT NULL, batch INTEGER NOT NULL,"
      " length INTEGER NOT NULL, dtype TEXT NOT NULL, runtime TEXT NOT NULL, median_us REAL NOT NULL,"
      " p10_us REAL NOT NULL, p90_us REAL NOT NULL, cv REAL NOT NULL, count INTEGER NOT NULL,"
      " samples_us TEXT NOT NULL, threads INTEGER NOT NULL, measured_at TEXT NOT NULL, rounds INTEGER NOT NULL,"
      " PRIMARY KEY(device_id, op, hp, d_model, phase, batch, length, dtype, runtime));"
      "CREATE TABLE IF NOT EXISTS lut_calibrations(device_id INTEGER NOT NULL REFERENCES devices(id),"
      " dtype TEXT NOT NULL, runtime TEXT NOT NULL, batch INTEGER NOT NULL, prefill_scale REAL NOT NULL,"
      " decode_scale REAL NOT NULL, archs INTEGER NOT NULL, report TEXT NOT NULL, created_at TEXT NOT NULL,"
      " PRIMARY KEY(device_id, dtype, runtime, batch));"
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
  json j = json::parse(q.text(1));
  j["fingerprint"] = q.text(0);
  return j;
}

void LutStore::set_calibration(int64_t device, const std::string& dtype, const std::string& runtime, int64_t batch,
                               const Calibration& c, const json& report) {
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_calibrations(device_id, dtype, runtime, batch, prefill_scale, decode_scale, archs,"
         " report, created_at) VALUES(?,?,?,?,?,?,?,?,?)");
  q.bind(1, device).bind(2, dtype).bind(3, runtime).bind(4, batch).bind(5, c.prefill_scale).bind(6, c.decode_scale);
  q.bind(7, c.archs).bind(8, report.dump()).bind(9, utc_now()).run();
}

std::optional<Calibration> LutStore::calibration(int64_t device, const std::string& dtype, const std::string& runtime,
                                                 int64_t batch) const {
  Stmt q(db_,
         "SELECT prefill_scale, decode_scale, archs FROM lut_calibrations WHERE device_id=? AND dtype=? AND runtime=? AND "
         "batch=?");
  q.bind(1, device).bind(2, dtype).bind(3, runtime).bind(4, batch);
  if (!q.step()) return std::nullopt;
  return Calibration{q.real(0), q.real(1), q.int64(2)};
}

std::optional<LutValue> LutStore::get(int64_t device, const LutKey& k) const {
  Stmt q(db_,
         "SELECT median_us, p10_us, p90_us, cv, count, rounds FROM lut_entries WHERE device_id=? AND op=? AND hp=? AND "
         "d_model=? AND phase=? AND batch=? AND length=? AND dtype=? AND runtime=?");
  q.bind(1, device).bind(2, k.op).bind(3, k.hp).bind(4, k.d_model).bind(5, phase_name(k.phase)).bind(6, k.batch);
  q.bind(7, k.length).bind(8, k.dtype).bind(9, k.runtime);
  if (!q.step()) return std::nullopt;
  return LutValue{q.real(0), q.real(1), q.real(2), q.real(3), q.int64(4), q.int64(5)};
}

void LutStore::put(int64_t device, const LutKey& k, const TimingStats& s, int threads) {
  const std::optional<LutValue> old = get(device, k);
  if (old && old->median_us <= s.median_us) {
    Stmt u(db_,
           "UPDATE lut_entries SET rounds = rounds + 1 WHERE device_id=? AND op=? AND hp=? AND d_model=? AND phase=? AND "
           "batch=? AND length=? AND dtype=? AND runtime=?");
    u.bind(1, device).bind(2, k.op).bind(3, k.hp).bind(4, k.d_model).bind(5, phase_name(k.phase)).bind(6, k.batch);
    u.bind(7, k.length).bind(8, k.dtype).bind(9, k.runtime).run();
    return;
  }
  Stmt q(db_,
         "INSERT OR REPLACE INTO lut_entries(device_id, op, hp, d_model, phase, batch, length, dtype, runtime,"
         " median_us, p10_us, p90_us, cv, count, samples_us, threads, measured_at, rounds)"
         " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  q.bind(1, device).bind(2, k.op).bind(3, k.hp).bind(4, k.d_model).bind(5, phase_name(k.phase)).bind(6, k.batch);
  q.bind(7, k.length).bind(8, k.dtype).bind(9, k.runtime).bind(10, s.median_us).bind(11, s.p10_us);
  q.bind(12, s.p90_us).bind(13, s.cv).bind(14, s.count).bind(15, json(s.samples_us).dump());
  q.bind(16, static_cast<int64_t>(threads)).bind(17, utc_now()).bind(18, old ? old->rounds + 1 : int64_t(1));
  q.run();
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
  while (q.step()) out.push_back(json::parse(q.text(0)));
  return out;
}

}  // namespace flashnas
