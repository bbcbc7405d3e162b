#include "compare/compare_store.h"

#include "common/error.h"
#include "common/sha256.h"

namespace flashnas {
namespace {

constexpr const char* kRunCols =
    "id, arch_hash, phase, lr, seed, tokens, recipe, status, worker, reason, val_loss, bpb, train_s, task, curve";

double real_or_nan(const Stmt& q, int col) { return q.is_null(col) ? NAN : q.real(col); }
std::string text_or_empty(const Stmt& q, int col) { return q.is_null(col) ? std::string() : q.text(col); }
json json_or_null(const Stmt& q, int col, const std::string& where) {
  return q.is_null(col) ? json() : parse_json(q.text(col), where);
}

// A JSON column: the compact text, or NULL for null.
void bind_json(Stmt& s, int i, const json& v) {
  if (v.is_null()) {
    s.bind_null(i);
  } else {
    s.bind(i, v.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

CompareRun read_run(const Stmt& q) {
  CompareRun r;
  r.id = q.int64(0);
  r.arch_hash = q.text(1);
  r.phase = q.text(2);
  r.lr = q.real(3);
  r.seed = q.int64(4);
  r.tokens = q.int64(5);
  r.recipe = parse_json(q.text(6), "compare_runs.recipe");
  r.status = q.text(7);
  r.worker = text_or_empty(q, 8);
  r.reason = text_or_empty(q, 9);
  r.val_loss = real_or_nan(q, 10);
  r.bpb = real_or_nan(q, 11);
  r.train_s = real_or_nan(q, 12);
  r.task = json_or_null(q, 13, "compare_runs.task");
  r.curve = json_or_null(q, 14, "compare_runs.curve");
  return r;
}

// What differs between two comparison configs, for the refusal's message.
std::string config_difference(const json& a, const json& b) {
  std::string out;
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k) || a.at(k) != v) out += (out.empty() ? "" : ", ") + k;
  }
  for (const auto& [k, v] : a.items()) {
    if (!b.contains(k)) out += (out.empty() ? "" : ", ") + k;
  }
  return out;
}

}  // namespace

CompareStore::CompareStore(const std::string& db, Access access) : db_(db, access) {
  require_schema_version(db_, "compare_schema_version", kCompareSchemaVersion, "comparison");
  db_.ensure_tables(
      "CREATE TABLE IF NOT EXISTS comparisons(id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL, name TEXT NOT NULL,"
      " config TEXT NOT NULL, config_hash TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE(study_id, name));"
      "CREATE TABLE IF NOT EXISTS compare_contenders(comparison_id INTEGER NOT NULL, budget TEXT NOT NULL,"
      " label TEXT NOT NULL, kind TEXT NOT NULL, arch_hash TEXT NOT NULL, arch TEXT NOT NULL, description TEXT NOT NULL,"
      " predicted_ms REAL, params INTEGER NOT NULL, note TEXT NOT NULL, pos INTEGER NOT NULL,"
      " PRIMARY KEY(comparison_id, budget, label));"
      "CREATE TABLE IF NOT EXISTS compare_runs(id INTEGER PRIMARY KEY, comparison_id INTEGER NOT NULL,"
      " arch_hash TEXT NOT NULL, phase TEXT NOT NULL CHECK(phase IN ('lr','final','measure')), lr REAL NOT NULL,"
      " seed INTEGER NOT NULL, tokens INTEGER NOT NULL, recipe TEXT NOT NULL,"
      " status TEXT NOT NULL CHECK(status IN ('pending','running','done','failed')), worker TEXT, lease_token TEXT,"
      " lease_expires REAL, val_loss REAL, bpb REAL, task TEXT, curve TEXT, train_s REAL, reason TEXT, finished_at TEXT,"
      " UNIQUE(comparison_id, arch_hash, phase, lr, seed));"
      "CREATE TABLE IF NOT EXISTS compare_latency(comparison_id INTEGER NOT NULL, arch_hash TEXT NOT NULL,"
      " workload TEXT NOT NULL, round INTEGER NOT NULL, median_us REAL NOT NULL, p10_us REAL NOT NULL,"
      " p90_us REAL NOT NULL, samples TEXT NOT NULL, device TEXT NOT NULL,"
      " PRIMARY KEY(comparison_id, arch_hash, workload, round));"
      "CREATE TABLE IF NOT EXISTS compare_speed(comparison_id INTEGER NOT NULL, arch_hash TEXT NOT NULL,"
      " workload TEXT NOT NULL, round INTEGER NOT NULL, probe_us REAL NOT NULL, reference_us REAL,"
      " PRIMARY KEY(comparison_id, arch_hash, workload, round));");
}

ComparisonRow CompareStore::open(int64_t study_id, const std::string& name, const json& config) {
  const std::string hash = sha256_hex(config.dump());
  {
    Transaction tx(db_);
    Stmt ins(db_, "INSERT OR IGNORE INTO comparisons(study_id, name, config, config_hash, created_at) VALUES(?,?,?,?,?)");
    ins.bind(1, study_id).bind(2, name).bind(3, config.dump()).bind(4, hash).bind(5, utc_now()).run();
    tx.commit();
  }
  ComparisonRow row = *find(study_id, name);
  if (row.config_hash != hash) {
    throw InputError(db_.path().string() + ": comparison \"" + name + "\" was made with other settings (" +
                     config_difference(row.config, config) +
                     " differ; a study whose frontier changed since has other picks); rerun with the same flags, or "
                     "pass a new --name");
  }
  return row;
}

std::optional<ComparisonRow> CompareStore::find(int64_t study_id, const std::string& name) const {
  Stmt q(db_, "SELECT id, config, config_hash, created_at FROM comparisons WHERE study_id = ? AND name = ?");
  q.bind(1, study_id).bind(2, name);
  if (!q.step()) return std::nullopt;
  ComparisonRow r;
  r.id = q.int64(0);
  r.study_id = study_id;
  r.name = name;
  r.config = parse_json(q.text(1), "comparisons.config");
  r.config_hash = q.text(2);
  r.created_at = q.text(3);
  return r;
}

std::vector<std::string> CompareStore::names(int64_t study_id) const {
  Stmt q(db_, "SELECT name FROM comparisons WHERE study_id = ? ORDER BY id");
  q.bind(1, study_id);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

void CompareStore::put_contenders(int64_t cmp, int budget_index, const std::string& budget,
                                  const std::vector<Contender>& cs) {
  Transaction tx(db_);
  int64_t pos = int64_t(budget_index) * 100000;
  for (const auto& c : cs) {
    Stmt ins(db_,
             "INSERT OR IGNORE INTO compare_contenders(comparison_id, budget, label, kind, arch_hash, arch, description,"
             " predicted_ms, params, note, pos) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, cmp).bind(2, budget).bind(3, c.label).bind(4, c.kind).bind(5, c.arch.hash());
    ins.bind(6, c.arch.to_json().dump()).bind(7, c.description);
    if (c.predicted_ms) {
      ins.bind(8, *c.predicted_ms);
    } else {
      ins.bind_null(8);
    }
    ins.bind(9, c.params).bind(10, c.note).bind(11, pos++).run();
  }
  tx.commit();
}

std::vector<StoredContender> CompareStore::contenders(int64_t cmp) const {
  Stmt q(db_, "SELECT budget, label, kind, arch_hash, arch, description, predicted_ms, params, note FROM compare_contenders"
              " WHERE comparison_id = ? ORDER BY pos");
  q.bind(1, cmp);
  std::vector<StoredContender> out;
  while (q.step()) {
    StoredContender c;
    c.budget = q.text(0);
    c.label = q.text(1);
    c.kind = q.text(2);
    c.arch_hash = q.text(3);
    c.arch = parse_json(q.text(4), "compare_contenders.arch");
    c.description = q.text(5);
    if (!q.is_null(6)) c.predicted_ms = q.real(6);
    c.params = q.int64(7);
    c.note = q.text(8);
    out.push_back(std::move(c));
  }
  return out;
}

void CompareStore::add_run(int64_t cmp, const CompareRun& r) {
  Stmt ins(db_,
           "INSERT OR IGNORE INTO compare_runs(comparison_id, arch_hash, phase, lr, seed, tokens, recipe, status)"
           " VALUES(?,?,?,?,?,?,?,'pending')");
  ins.bind(1, cmp).bind(2, r.arch_hash).bind(3, r.phase).bind(4, r.lr).bind(5, r.seed).bind(6, r.tokens);
  ins.bind(7, r.recipe.dump()).run();
}

std::vector<CompareRun> CompareStore::runs(int64_t cmp) const {
  Stmt q(db_, std::string("SELECT ") + kRunCols + " FROM compare_runs WHERE comparison_id = ? ORDER BY id");
  q.bind(1, cmp);
  std::vector<CompareRun> out;
  while (q.step()) out.push_back(read_run(q));
  return out;
}

std::optional<CompareRun> CompareStore::claim(int64_t cmp, const std::string& worker, const std::string& token,
                                              bool measure) {
  const std::string now = db_.epoch_sql();
  const std::string lock = db_.dialect() == Dialect::postgresql ? " FOR UPDATE SKIP LOCKED" : "";
  const std::string waiting = "(status = 'pending' OR (status = 'running' AND (lease_expires IS NULL OR lease_expires < " +
                              now + ")))";
  std::string pick = "SELECT id FROM compare_runs WHERE comparison_id = ?1 AND " + waiting;
  if (measure) {
    pick += " AND phase = 'measure' AND NOT EXISTS (SELECT 1 FROM compare_runs o WHERE o.comparison_id = ?1 AND"
            " o.phase <> 'measure' AND o.status IN ('pending','running'))";
  } else {
    pick += " AND phase <> 'measure'";
  }
  pick += " ORDER BY id LIMIT 1" + lock;
  Stmt s(db_, "UPDATE compare_runs SET status = 'running', worker = ?2, lease_token = ?3, lease_expires = " + now +
                  " + ?4 WHERE id = (" + pick + ") RETURNING " + kRunCols);
  s.bind(1, cmp).bind(2, worker).bind(3, token).bind(4, lease_s_);
  if (!s.step()) return std::nullopt;
  CompareRun r = read_run(s);
  s.reset();
  return r;
}

void CompareStore::finish(const Lease& l, const TrainResult& r, const json& task) {
  json curve = json::array();
  for (const auto& p : r.curve) {
    curve.push_back({p.step, p.tokens, std::isfinite(p.train_loss) ? json(p.train_loss) : json(),
                     std::isfinite(p.val_loss) ? json(p.val_loss) : json(), p.lr});
  }
  Stmt s(db_,
         "UPDATE compare_runs SET status = 'done', val_loss = ?, bpb = ?, task = ?, curve = ?, train_s = ?, reason = NULL,"
         " finished_at = ?, lease_token = NULL, lease_expires = NULL WHERE id = ? AND lease_token = ? AND"
         " status = 'running' RETURNING id");
  s.bind(1, r.val_loss).bind(2, r.val_bpb);
  bind_json(s, 3, task);
  s.bind(4, curve.dump()).bind(5, r.wall_s).bind(6, utc_now()).bind(7, l.trial_id).bind(8, l.token);
  const bool held = s.step();
  s.reset();
  if (!held) throw LeaseLost("comparison run " + std::to_string(l.trial_id) + ": the lease was lost; the result is discarded");
}

std::optional<CompareRun> CompareStore::same_run_elsewhere(int64_t cmp, const CompareRun& r) const {
  // The comparisons on the same training data.
  std::string data;
  std::vector<std::pair<int64_t, std::string>> others;
  {
    Stmt q(db_, "SELECT id, config FROM comparisons");
    while (q.step()) {
      const json c = parse_json(q.text(1), "comparisons.config");
      const std::string d = c.value("data", std::string());
      if (q.int64(0) == cmp) {
        data = d;
      } else {
        others.emplace_back(q.int64(0), d);
      }
    }
  }
  for (const auto& [id, d] : others) {
    if (d.empty() || d != data) continue;
    Stmt q(db_, std::string("SELECT ") + kRunCols + " FROM compare_runs WHERE comparison_id = ? AND arch_hash = ? AND"
                " phase = ? AND lr = ? AND seed = ? AND tokens = ? AND recipe = ? AND status = 'done' ORDER BY id LIMIT 1");
    q.bind(1, id).bind(2, r.arch_hash).bind(3, r.phase).bind(4, r.lr).bind(5, r.seed).bind(6, r.tokens);
    q.bind(7, r.recipe.dump());
    if (q.step()) return read_run(q);
  }
  return std::nullopt;
}

void CompareStore::finish_reused(const Lease& l, const CompareRun& from) {
  Stmt s(db_,
         "UPDATE compare_runs SET status = 'done', val_loss = ?, bpb = ?, task = ?, curve = ?, train_s = 0, reason = ?,"
         " finished_at = ?, lease_token = NULL, lease_expires = NULL WHERE id = ? AND lease_token = ? AND"
         " status = 'running' RETURNING id");
  s.bind(1, from.val_loss).bind(2, from.bpb);
  bind_json(s, 3, from.task);
  bind_json(s, 4, from.curve);
  s.bind(5, "reused: the same run as comparison run " + std::to_string(from.id)).bind(6, utc_now());
  s.bind(7, l.trial_id).bind(8, l.token);
  const bool held = s.step();
  s.reset();
  if (!held) throw LeaseLost("comparison run " + std::to_string(l.trial_id) + ": the lease was lost; the result is discarded");
}

void CompareStore::finish_measure(const Lease& l, double wall_s) {
  Stmt s(db_,
         "UPDATE compare_runs SET status = 'done', train_s = ?, finished_at = ?, lease_token = NULL, lease_expires = NULL"
         " WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING id");
  s.bind(1, wall_s).bind(2, utc_now()).bind(3, l.trial_id).bind(4, l.token);
  const bool held = s.step();
  s.reset();
  if (!held) throw LeaseLost("the comparison's measurement: the lease was lost");
}

void CompareStore::fail(const Lease& l, const std::string& reason, double wall_s) {
  Stmt s(db_,
         "UPDATE compare_runs SET status = 'failed', reason = ?, train_s = ?, finished_at = ?, lease_token = NULL,"
         " lease_expires = NULL WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING id");
  s.bind(1, reason).bind(2, wall_s).bind(3, utc_now()).bind(4, l.trial_id).bind(5, l.token);
  const bool held = s.step();
  s.reset();
  if (!held) throw LeaseLost("comparison run " + std::to_string(l.trial_id) + ": the lease was lost; the result is discarded");
}

void CompareStore::release(const Lease& l) {
  Stmt s(db_, "UPDATE compare_runs SET status = 'pending', worker = NULL, lease_token = NULL, lease_expires = NULL"
              " WHERE id = ? AND lease_token = ? AND status = 'running'");
  s.bind(1, l.trial_id).bind(2, l.token).run();
}

bool CompareStore::renew_compare_lease(Db& db, const Lease& l, double lease_s) {
  Stmt s(db, "UPDATE compare_runs SET lease_expires = " + db.epoch_sql() +
                 " + ? WHERE id = ? AND lease_token = ? AND status = 'running' RETURNING id");
  s.bind(1, lease_s).bind(2, l.trial_id).bind(3, l.token);
  const bool held = s.step();
  s.reset();
  return held;
}

void CompareStore::put_latency(int64_t cmp, const LatencyRow& r) {
  Stmt s(db_,
         "INSERT OR REPLACE INTO compare_latency(comparison_id, arch_hash, workload, round, median_us, p10_us, p90_us,"
         " samples, device) VALUES(?,?,?,?,?,?,?,?,?)");
  s.bind(1, cmp).bind(2, r.arch_hash).bind(3, r.workload).bind(4, int64_t(r.round)).bind(5, r.median_us);
  s.bind(6, r.p10_us).bind(7, r.p90_us).bind(8, json(r.samples_us).dump()).bind(9, r.device).run();
  if (!(r.probe_us > 0)) return;
  Stmt p(db_,
         "INSERT OR REPLACE INTO compare_speed(comparison_id, arch_hash, workload, round, probe_us, reference_us)"
         " VALUES(?,?,?,?,?,?)");
  p.bind(1, cmp).bind(2, r.arch_hash).bind(3, r.workload).bind(4, int64_t(r.round)).bind(5, r.probe_us);
  if (r.reference_us > 0) {
    p.bind(6, r.reference_us);
  } else {
    p.bind_null(6);
  }
  p.run();
}

std::vector<LatencyRow> CompareStore::latency(int64_t cmp) const {
  Stmt q(db_,
         "SELECT l.arch_hash, l.workload, l.round, l.median_us, l.p10_us, l.p90_us, l.samples, l.device, s.probe_us,"
         " s.reference_us FROM compare_latency l LEFT JOIN compare_speed s ON s.comparison_id = l.comparison_id AND"
         " s.arch_hash = l.arch_hash AND s.workload = l.workload AND s.round = l.round"
         " WHERE l.comparison_id = ? ORDER BY l.workload, l.round, l.arch_hash");
  q.bind(1, cmp);
  std::vector<LatencyRow> out;
  while (q.step()) {
    LatencyRow r;
    r.arch_hash = q.text(0);
    r.workload = q.text(1);
    r.round = int(q.int64(2));
    r.median_us = q.real(3);
    r.p10_us = q.real(4);
    r.p90_us = q.real(5);
    r.samples_us = parse_json(q.text(6), "compare_latency.samples").get<std::vector<double>>();
    r.device = q.text(7);
    r.probe_us = real_or_nan(q, 8);
    r.reference_us = real_or_nan(q, 9);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace flashnas
