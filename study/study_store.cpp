#include "study/study_store.h"

#include <algorithm>
#include <ctime>
#include <map>

#include "common/error.h"
#include "common/sha256.h"

namespace flashnas {
namespace {

void bind_opt(Stmt& s, int i, const std::optional<int64_t>& v) {
  if (v) s.bind(i, *v);
  else s.bind_null(i);
}
void bind_real(Stmt& s, int i, double v) {
  if (std::isfinite(v)) s.bind(i, v);
  else s.bind_null(i);
}
std::optional<int64_t> opt_int(const Stmt& s, int c) {
  if (s.is_null(c)) return std::nullopt;
  return s.int64(c);
}
double opt_real(const Stmt& s, int c) { return s.is_null(c) ? NAN : s.real(c); }

constexpr const char* kTrialCols =
    "id, number, slot, cycle, parent, reused_from, origin, genome, arch, hash, status, reason, worker, d_model, "
    "params, predicted, latency_ms, loss, bpb, train_s, rung";

TrialRow read_trial(const Stmt& s) {
  TrialRow t;
  t.id = s.int64(0);
  t.number = s.int64(1);
  t.slot = opt_int(s, 2);
  t.cycle = opt_int(s, 3);
  t.parent = opt_int(s, 4);
  t.reused_from = opt_int(s, 5);
  t.origin = s.text(6);
  t.genome = s.text(7);
  t.arch = s.text(8);
  t.hash = s.text(9);
  t.status = s.text(10);
  t.reason = s.is_null(11) ? "" : s.text(11);
  t.worker = s.is_null(12) ? "" : s.text(12);
  t.d_model = s.int64(13);
  t.params = s.int64(14);
  t.predicted = parse_json(s.text(15), "study database, trial " + std::to_string(t.number) + ", column predicted");
  t.latency_ms = opt_real(s, 16);
  t.loss = opt_real(s, 17);
  t.bpb = opt_real(s, 18);
  t.train_s = opt_real(s, 19);
  t.rung = s.is_null(20) ? -1 : static_cast<int>(s.int64(20));
  return t;
}

constexpr const char* kRungsTable =
    "CREATE TABLE IF NOT EXISTS trial_rungs(trial_id INTEGER NOT NULL REFERENCES trials(id), rung INTEGER NOT NULL,"
    " tokens INTEGER NOT NULL, status TEXT NOT NULL CHECK(status IN ('running','done','failed')), worker TEXT,"
    " loss REAL, bpb REAL, train_s REAL, reason TEXT, started_at TEXT, finished_at TEXT, lease_token TEXT,"
    " lease_expires REAL, PRIMARY KEY(trial_id, rung));";
// trial_rungs as version 3 made it (the step from 2 to 3 makes this one).
constexpr const char* kRungsTableV3 =
    "CREATE TABLE IF NOT EXISTS trial_rungs(trial_id INTEGER NOT NULL REFERENCES trials(id), rung INTEGER NOT NULL,"
    " tokens INTEGER NOT NULL, status TEXT NOT NULL CHECK(status IN ('running','done','failed')), worker TEXT,"
    " loss REAL, bpb REAL, train_s REAL, reason TEXT, started_at TEXT, finished_at TEXT, PRIMARY KEY(trial_id, rung));";
constexpr const char* kCurvesTable =
    "CREATE TABLE IF NOT EXISTS trial_curves(trial_id INTEGER NOT NULL REFERENCES trials(id), rung INTEGER NOT NULL,"
    " step INTEGER NOT NULL, tokens INTEGER NOT NULL, train_loss REAL, val_loss REAL, lr REAL NOT NULL,"
    " PRIMARY KEY(trial_id, rung, step));";
constexpr const char* kTaskTable =
    "CREATE TABLE IF NOT EXISTS trial_task(trial_id INTEGER NOT NULL REFERENCES trials(id), rung INTEGER NOT NULL,"
    " metrics TEXT NOT NULL, PRIMARY KEY(trial_id, rung));";

// Version 2 (one fidelity, no rungs) to 3, in one transaction: every trained
// trial becomes a trial at rung 0 with its curve.
void migrate_v2(Db& db) {
  if (db.dialect() != Dialect::sqlite) return;  // version 2 studies were SQLite files only
  {
    db.ensure_tables("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    Stmt q(db, "SELECT value FROM meta WHERE key = 'study_schema_version'");
    if (!q.step() || q.text(0) != "2") return;
  }
  if (db.read_only()) {
    throw InputError(db.path().string() + ": study schema version 2, which this flashnas upgrades in place; this command "
                     "only reads, so run any writing command (search) on it once, or read a writable copy");
  }
  Transaction tx(db);
  db.exec("ALTER TABLE trials ADD COLUMN rung INTEGER;");
  db.exec(kRungsTableV3);
  db.exec("ALTER TABLE trial_curves RENAME TO trial_curves_v2;");
  db.exec(kCurvesTable);
  db.exec(
      "INSERT INTO trial_curves(trial_id, rung, step, tokens, train_loss, val_loss, lr)"
      " SELECT trial_id, 0, step, tokens, train_loss, val_loss, lr FROM trial_curves_v2;"
      "DROP TABLE trial_curves_v2;"
      "UPDATE trials SET rung = 0 WHERE status = 'done' AND reused_from IS NULL;"
      "INSERT INTO trial_rungs(trial_id, rung, tokens, status, worker, loss, bpb, train_s, started_at, finished_at)"
      " SELECT t.id, 0, COALESCE((SELECT MAX(tokens) FROM trial_curves c WHERE c.trial_id = t.id), 0), 'done', t.worker,"
      " t.loss, t.bpb, t.train_s, t.started_at, t.finished_at FROM trials t WHERE t.rung = 0;"
      "UPDATE meta SET value = '3' WHERE key = 'study_schema_version';");
  tx.commit();
}

// Version 3 to 4, in one transaction: the lease columns. Work in flight in
// a version 3 study has no lease and is reclaimed by the first worker.
void migrate_v3(Db& db) {
  if (db.read_only() || !db.has_table("meta")) return;
  auto version = [&db] {
    Stmt q(db, "SELECT value FROM meta WHERE key = 'study_schema_version'");
    return q.step() ? q.text(0) : std::string();
  };
  if (version() != "3") return;
  Transaction tx(db);
  if (version() != "3") return;  // another worker migrated it meanwhile
  const std::string real = db.dialect() == Dialect::postgresql ? "DOUBLE PRECISION" : "REAL";
  for (const char* table : {"trials", "trial_rungs"}) {
    db.exec(std::string("ALTER TABLE ") + table + " ADD COLUMN lease_token TEXT;");
    db.exec(std::string("ALTER TABLE ") + table + " ADD COLUMN lease_expires " + real + ";");
  }
  db.exec("UPDATE meta SET value = '4' WHERE key = 'study_schema_version';");
  tx.commit();
}

}  // namespace

double TrialRow::loss_at(int r) const {
  if (r == rung) return loss;
  const RungRow* x = rung_row(r);
  return x && x->status == "done" ? x->loss : NAN;
}

const RungRow* TrialRow::rung_row(int r) const {
  for (const auto& x : rungs) {
    if (x.rung == r) return &x;
  }
  return nullptr;
}

StudyStore::StudyStore(const std::filesystem::path& path, Access access) : db_(path, access) {
  // A commit does not wait for the server's disk (as SQLite's WAL with
  // synchronous=NORMAL): a crash of the server, not a restart, may lose the
  // last commits, and a result lost so leaves its trial in flight under a
  // lease that expires, so it is trained again; nothing is corrupted.
  if (db_.dialect() == Dialect::postgresql && !db_.read_only()) db_.session("SET synchronous_commit = off");
  migrate_v2(db_);
  migrate_v3(db_);
  // The version first: an older file is refused before anything is added to
  // it. A reader reads version 3 as it is (it reads no lease column).
  bool v3_read = false;
  if (db_.read_only() && db_.has_table("meta")) {
    Stmt q(db_, "SELECT value FROM meta WHERE key = 'study_schema_version'");
    v3_read = q.step() && q.text(0) == "3";
  }
  if (!v3_read) require_schema_version(db_, "study_schema_version", kStudySchemaVersion, "study");
  db_.ensure_tables(
      "CREATE TABLE IF NOT EXISTS studies(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, config TEXT NOT NULL,"
      " config_hash TEXT NOT NULL, seed INTEGER NOT NULL, rng_state TEXT NOT NULL, lut_device INTEGER NOT NULL,"
      " lut_table TEXT NOT NULL, created_at TEXT NOT NULL, finished_at TEXT);"
      "CREATE TABLE IF NOT EXISTS trials(id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL REFERENCES studies(id),"
      " number INTEGER NOT NULL, slot INTEGER, cycle INTEGER, origin TEXT NOT NULL, parent INTEGER,"
      " genome TEXT NOT NULL, arch TEXT NOT NULL, hash TEXT NOT NULL, d_model INTEGER NOT NULL,"
      " status TEXT NOT NULL CHECK(status IN ('pending','running','done','failed','pruned')), reason TEXT,"
      " predicted TEXT NOT NULL, latency_ms REAL, params INTEGER NOT NULL, loss REAL, bpb REAL,"
      " reused_from INTEGER, worker TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, train_s REAL,"
      " rung INTEGER, lease_token TEXT, lease_expires REAL, UNIQUE(study_id, number), UNIQUE(study_id, slot));"
      "CREATE INDEX IF NOT EXISTS trials_hash ON trials(study_id, hash);"
      "CREATE INDEX IF NOT EXISTS trials_status ON trials(study_id, status, slot);");
  db_.ensure_tables(kRungsTable);
  db_.ensure_tables(kCurvesTable);
  db_.ensure_tables(kTaskTable);
}

void StudyStore::set_task_metrics(int64_t trial_id, int rung, const json& metrics) {
  Stmt s(db_, "INSERT INTO trial_task(trial_id, rung, metrics) VALUES(?, ?, ?)"
              " ON CONFLICT(trial_id, rung) DO UPDATE SET metrics = excluded.metrics");
  s.bind(1, trial_id).bind(2, int64_t(rung)).bind(3, metrics.dump(-1, ' ', false, json::error_handler_t::replace)).run();
}

std::vector<std::string> StudyStore::study_names() const {
  Stmt q(db_, "SELECT name FROM studies ORDER BY id");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

StudyRow StudyStore::get_study(const std::string& name) const {
  Stmt q(db_, "SELECT id, name, config, config_hash, seed, rng_state, lut_device, finished_at, lut_table FROM studies WHERE name = ?");
  q.bind(1, name);
  if (!q.step()) {
    const auto names = study_names();
    throw InputError(db_.path().string() + ": no study named \"" + name + "\"" +
                     (names.empty() ? std::string("; the file holds no studies") : "; studies here: " + join_comma(names)));
  }
  StudyRow s;
  s.id = q.int64(0);
  s.name = q.text(1);
  s.config = parse_json(q.text(2), db_.path().string() + ": study \"" + s.name + "\", column config");
  s.config_hash = q.text(3);
  s.seed = static_cast<uint64_t>(q.int64(4));
  s.rng_state = q.text(5);
  s.lut_device = q.int64(6);
  s.lut_table = parse_json(q.text(8), db_.path().string() + ": study \"" + name + "\", column lut_table");
  s.finished = !q.is_null(7);
  return s;
}

StudyRow StudyStore::open_study(const std::string& name, const json& config, uint64_t seed, int64_t lut_device,
                               const json& lut_table) {
  const std::string text = config.dump();
  const std::string hash = sha256_hex(text);
  {
    Stmt q(db_, "SELECT config_hash FROM studies WHERE name = ?");
    q.bind(1, name);
    if (q.step()) {
      if (q.text(0) != hash) {
        throw InputError(db_.path().string() + ": study \"" + name +
                         "\" was created with a different config; rerun with that config to resume it, or pass a new "
                         "--study name");
      }
      return get_study(name);
    }
  }
  // Workers starting together race here: the name is UNIQUE and the losers'
  // inserts do nothing, so all of them read the one study (and check its config).
  Stmt ins(db_,
           "INSERT INTO studies(name, config, config_hash, seed, rng_state, lut_device, lut_table, created_at)"
           " VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(name) DO NOTHING");
  ins.bind(1, name).bind(2, text).bind(3, hash).bind(4, static_cast<int64_t>(seed)).bind(5, std::to_string(seed));
  ins.bind(6, lut_device).bind(7, lut_table.dump()).bind(8, utc_now()).run();
  Stmt q(db_, "SELECT config_hash FROM studies WHERE name = ?");
  q.bind(1, name);
  if (q.step() && q.text(0) != hash) {
    throw InputError(db_.path().string() + ": study \"" + name +
                     "\" was just created by another worker with a different config; rerun with that config, or pass a "
                     "new --study name");
  }
  return get_study(name);
}

void StudyStore::set_rng(int64_t study, const std::string& state) {
  Stmt s(db_, "UPDATE studies SET rng_state = ? WHERE id = ?");
  s.bind(1, state).bind(2, study).run();
}

void StudyStore::set_finished(int64_t study, bool finished) {
  Stmt s(db_, "UPDATE studies SET finished_at = ? WHERE id = ?");
  if (finished) s.bind(1, utc_now());
  else s.bind_null(1);
  s.bind(2, study).run();
}

std::vector<TrialRow> StudyStore::trials(int64_t study) const { return load_trials(study, -1); }

// The study's trials (number >= 0: that one only) with their rungs and task metrics.
std::vector<TrialRow> StudyStore::load_trials(int64_t study, int64_t number) const {
  const std::string one = number >= 0 ? " AND t.number = ?2" : "";
  Stmt q(db_, std::string("SELECT ") + kTrialCols + " FROM trials t WHERE study_id = ?1" + one + " ORDER BY number");
  q.bind(1, study);
  if (number >= 0) q.bind(2, number);
  std::vector<TrialRow> out;
  while (q.step()) out.push_back(read_trial(q));
  std::map<int64_t, TrialRow*> by_id;
  for (auto& t : out) by_id[t.id] = &t;
  if (out.empty()) return out;
  Stmt r(db_,
         "SELECT r.trial_id, r.rung, r.tokens, r.status, r.worker, r.loss, r.bpb, r.train_s, r.reason, r.finished_at FROM trial_rungs r"
         " JOIN trials t ON t.id = r.trial_id WHERE t.study_id = ?1" + one + " ORDER BY r.trial_id, r.rung");
  r.bind(1, study);
  if (number >= 0) r.bind(2, number);
  while (r.step()) {
    RungRow x;
    x.rung = static_cast<int>(r.int64(1));
    x.tokens = r.int64(2);
    x.status = r.text(3);
    x.worker = r.is_null(4) ? "" : r.text(4);
    x.loss = opt_real(r, 5);
    x.bpb = opt_real(r, 6);
    x.train_s = opt_real(r, 7);
    x.reason = r.is_null(8) ? "" : r.text(8);
    x.finished_at = r.is_null(9) ? "" : r.text(9);
    by_id.at(r.int64(0))->rungs.push_back(x);
  }
  Stmt m(db_, "SELECT k.trial_id, k.rung, k.metrics FROM trial_task k JOIN trials t ON t.id = k.trial_id WHERE t.study_id = ?1" + one);
  m.bind(1, study);
  if (number >= 0) m.bind(2, number);
  while (m.step()) {
    TrialRow* t = by_id.at(m.int64(0));
    if (static_cast<int>(m.int64(1)) == t->rung) {
      t->task = parse_json(m.text(2), "study database, trial " + std::to_string(t->number) + ", table trial_task");
    }
  }
  return out;
}

std::optional<TrialRow> StudyStore::trial(int64_t study, int64_t number) const {
  auto one = load_trials(study, number);
  if (one.empty()) return std::nullopt;
  return one.front();
}

TrialRow StudyStore::insert(int64_t study, TrialRow t) {
  {
    Stmt q(db_, "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?");
    q.bind(1, study);
    q.step();
    t.number = q.int64(0);
  }
  Stmt s(db_,
         "INSERT INTO trials(study_id, number, slot, cycle, origin, parent, genome, arch, hash, d_model, status, reason,"
         " predicted, latency_ms, params, loss, bpb, reused_from, worker, created_at, started_at, finished_at, lease_token,"
         " lease_expires) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, " + db_.epoch_sql() + " + ?) RETURNING id");
  s.bind(1, study).bind(2, t.number);
  bind_opt(s, 3, t.slot);
  bind_opt(s, 4, t.cycle);
  s.bind(5, t.origin);
  bind_opt(s, 6, t.parent);
  s.bind(7, t.genome).bind(8, t.arch).bind(9, t.hash).bind(10, t.d_model).bind(11, t.status);
  if (t.reason.empty()) s.bind_null(12);
  else s.bind(12, t.reason);
  s.bind(13, t.predicted.dump());
  bind_real(s, 14, t.latency_ms);
  s.bind(15, t.params);
  bind_real(s, 16, t.loss);
  bind_real(s, 17, t.bpb);
  bind_opt(s, 18, t.reused_from);
  if (t.worker.empty()) s.bind_null(19);
  else s.bind(19, t.worker);
  const std::string now = utc_now();
  s.bind(20, now);
  if (t.status == "running") s.bind(21, now);
  else s.bind_null(21);
  if (t.status == "done" || t.status == "pruned") s.bind(22, now);
  else s.bind_null(22);
  if (t.status == "running") {
    if (t.lease_token.empty()) throw Error("study store: a running trial must be inserted under a lease");
    s.bind(23, t.lease_token).bind(24, lease_s_);
  } else {
    s.bind_null(23).bind_null(24);
  }
  s.step();
  t.id = s.int64(0);
  s.reset();
  return t;
}

namespace {

[[noreturn]] void lost(const Lease& l, const std::string& what) {
  throw LeaseLost("trial id " + std::to_string(l.trial_id) + (l.rung > 0 ? ", rung " + std::to_string(l.rung) : "") +
                  ": " + what + " not written: this worker no longer holds its lease (it expired and another worker "
                  "took the work over, or the work was given back)");
}

}  // namespace

void StudyStore::finish(const Lease& l, const TrainResult& r) {
  // A retried commit after the trial was promoted keeps the higher rung's values.
  static const std::string trial_sql =
      "UPDATE trials SET status = 'done', reason = NULL, lease_expires = NULL, params = ?3,"
      " loss = CASE WHEN COALESCE(rung, -1) <= 0 THEN ?1 ELSE loss END,"
      " bpb = CASE WHEN COALESCE(rung, -1) <= 0 THEN ?2 ELSE bpb END,"
      " finished_at = CASE WHEN COALESCE(rung, -1) <= 0 THEN ?4 ELSE finished_at END,"
      " train_s = CASE WHEN COALESCE(rung, -1) <= 0 THEN ?5 ELSE train_s END,"
      " rung = CASE WHEN COALESCE(rung, -1) <= 0 THEN 0 ELSE rung END"
      " WHERE id = ?6 AND lease_token = ?7 AND status IN ('running', 'done')";
  static const std::string rung_columns =
      "INSERT INTO trial_rungs(trial_id, rung, tokens, status, worker, loss, bpb, train_s, started_at, finished_at, lease_token) ";
  static const std::string rung_conflict =
      " ON CONFLICT(trial_id, rung) DO UPDATE SET tokens = excluded.tokens, status = 'done', worker = excluded.worker,"
      " loss = excluded.loss, bpb = excluded.bpb, train_s = excluded.train_s, finished_at = excluded.finished_at,"
      " lease_token = excluded.lease_token, lease_expires = NULL, reason = NULL";
  const std::string now = utc_now();
  auto bind_trial = [&](Stmt& s) {
    bind_real(s, 1, r.val_loss);
    bind_real(s, 2, r.val_bpb);
    s.bind(3, r.params).bind(4, now).bind(5, r.wall_s).bind(6, l.trial_id).bind(7, l.token);
  };
  if (db_.dialect() == Dialect::postgresql) {
    // One statement (data-modifying WITH clauses, which SQLite lacks): the
    // trial, its rung-0 row and its curve are written in one round trip to
    // the server instead of three (bench/bench_store.cpp measures it).
    std::string sql = "WITH u AS (" + trial_sql + " RETURNING id, worker), g AS (" + rung_columns +
                      "SELECT id, 0, CAST(?8 AS BIGINT), 'done', worker, CAST(?1 AS DOUBLE PRECISION), CAST(?2 AS DOUBLE"
                      " PRECISION), CAST(?5 AS DOUBLE PRECISION), CAST(?4 AS TEXT), CAST(?4 AS TEXT), CAST(?7 AS TEXT) FROM u" +
                      rung_conflict + ")";
    if (!r.curve.empty()) {
      sql += ", c AS (INSERT INTO trial_curves(trial_id, rung, step, tokens, train_loss, val_loss, lr) SELECT u.id, 0, v.step,"
             " v.tokens, v.train_loss, v.val_loss, v.lr FROM u, (VALUES ";
      for (size_t i = 0; i < r.curve.size(); ++i) {
        auto p = [&](int k, const char* type) { return "CAST(?" + std::to_string(9 + 5 * i + size_t(k)) + " AS " + type + ")"; };
        sql += (i ? ", (" : "(") + p(0, "BIGINT") + ", " + p(1, "BIGINT") + ", " + p(2, "DOUBLE PRECISION") + ", " +
               p(3, "DOUBLE PRECISION") + ", " + p(4, "DOUBLE PRECISION") + ")";
      }
      sql += ") AS v(step, tokens, train_loss, val_loss, lr) ON CONFLICT(trial_id, rung, step) DO UPDATE SET"
             " tokens = excluded.tokens, train_loss = excluded.train_loss, val_loss = excluded.val_loss, lr = excluded.lr)";
    }
    Stmt s(db_, sql + " SELECT COUNT(*) FROM u");
    bind_trial(s);
    s.bind(8, r.tokens);
    for (size_t i = 0; i < r.curve.size(); ++i) {
      const CurvePoint& c = r.curve[i];
      const int b = int(9 + 5 * i);
      s.bind(b, c.step).bind(b + 1, c.tokens);
      bind_real(s, b + 2, c.train_loss);
      bind_real(s, b + 3, c.val_loss);
      s.bind(b + 4, c.lr);
    }
    s.step();
    const bool held = s.int64(0) > 0;
    s.reset();
    if (!held) lost(l, "the result");
    return;
  }
  Stmt s(db_, trial_sql + " RETURNING worker");
  bind_trial(s);
  if (!s.step()) lost(l, "the result");
  const std::string worker = s.is_null(0) ? "" : s.text(0);
  s.reset();
  Stmt g(db_, rung_columns + "VALUES(?, 0, ?, 'done', ?, ?, ?, ?, ?, ?, ?)" + rung_conflict);
  g.bind(1, l.trial_id).bind(2, r.tokens);
  if (worker.empty()) g.bind_null(3);
  else g.bind(3, worker);
  bind_real(g, 4, r.val_loss);
  bind_real(g, 5, r.val_bpb);
  g.bind(6, r.wall_s).bind(7, now).bind(8, now).bind(9, l.token).run();
  write_curve(l.trial_id, 0, r.curve);
}

void StudyStore::commit_result(const Lease& l, const TrainResult& r, const json& task) {
  if (db_.dialect() == Dialect::postgresql && task.is_null()) return finish(l, r);  // one statement commits alone
  Transaction tx(db_, Transaction::Lock::rows);
  finish(l, r);
  if (!task.is_null()) set_task_metrics(l.trial_id, 0, task);
  tx.commit();
}

void StudyStore::fail(const Lease& l, const std::string& reason, double train_s) {
  const bool promotion = l.rung > 0;
  Stmt s(db_, promotion ? "UPDATE trial_rungs SET status = 'failed', reason = ?, train_s = ?, finished_at = ?, lease_expires = NULL"
                          " WHERE trial_id = ? AND lease_token = ? AND status IN ('running', 'failed') AND rung = ? RETURNING rung"
                        : "UPDATE trials SET status = 'failed', reason = ?, train_s = ?, finished_at = ?, lease_expires = NULL"
                          " WHERE id = ? AND lease_token = ? AND status IN ('running', 'failed') RETURNING id");
  s.bind(1, reason);
  bind_real(s, 2, train_s);
  s.bind(3, utc_now()).bind(4, l.trial_id).bind(5, l.token);
  if (promotion) s.bind(6, int64_t(l.rung));
  if (!s.step()) lost(l, "the failure");
  s.reset();
}

void StudyStore::start_rung(const Lease& l, int64_t tokens, const std::string& worker) {
  Stmt s(db_,
         "INSERT INTO trial_rungs(trial_id, rung, tokens, status, worker, started_at, lease_token, lease_expires)"
         " VALUES(?,?,?,'running',?,?,?," + db_.epoch_sql() + " + ?)"
         " ON CONFLICT(trial_id, rung) DO UPDATE SET tokens = excluded.tokens, status = 'running', worker = excluded.worker,"
         " started_at = excluded.started_at, loss = NULL, bpb = NULL, train_s = NULL, reason = NULL, finished_at = NULL,"
         " lease_token = excluded.lease_token, lease_expires = excluded.lease_expires");
  s.bind(1, l.trial_id).bind(2, int64_t(l.rung)).bind(3, tokens);
  if (worker.empty()) s.bind_null(4);
  else s.bind(4, worker);
  s.bind(5, utc_now()).bind(6, l.token).bind(7, lease_s_).run();
  Stmt d(db_, "DELETE FROM trial_curves WHERE trial_id = ? AND rung = ?");
  d.bind(1, l.trial_id).bind(2, int64_t(l.rung)).run();
}

void StudyStore::finish_rung(const Lease& l, const TrainResult& r) {
  const std::string now = utc_now();
  const int64_t trial_id = l.trial_id, rung = l.rung;
  Stmt u(db_, "UPDATE trial_rungs SET status = 'done', tokens = ?, loss = ?, bpb = ?, train_s = ?, finished_at = ?,"
              " reason = NULL, lease_expires = NULL WHERE trial_id = ? AND rung = ? AND lease_token = ?"
              " AND status IN ('running', 'done') RETURNING rung");
  u.bind(1, r.tokens);
  bind_real(u, 2, r.val_loss);
  bind_real(u, 3, r.val_bpb);
  u.bind(4, r.wall_s).bind(5, now).bind(6, trial_id).bind(7, rung).bind(8, l.token);
  if (!u.step()) lost(l, "the result");
  u.reset();
  // The trial's loss is its highest finished rung's; train_s the time of all its rungs.
  Stmt s(db_, "UPDATE trials SET loss = ?, bpb = ?, params = ?, rung = ?, finished_at = ?,"
              " train_s = (SELECT SUM(train_s) FROM trial_rungs WHERE trial_id = ?) WHERE id = ? AND COALESCE(rung, -1) <= ?");
  bind_real(s, 1, r.val_loss);
  bind_real(s, 2, r.val_bpb);
  s.bind(3, r.params).bind(4, rung).bind(5, now).bind(6, trial_id).bind(7, trial_id).bind(8, rung).run();
  write_curve(trial_id, rung, r.curve);
}

std::optional<TrialRow> StudyStore::claim_waiting(int64_t study, const std::string& worker, const std::string& token) {
  const std::string now = db_.epoch_sql();
  // PostgreSQL: a row another worker is claiming right now is skipped, not
  // waited for. SQLite: the transaction (BEGIN IMMEDIATE) is the only writer.
  const std::string lock = db_.dialect() == Dialect::postgresql ? " FOR UPDATE SKIP LOCKED" : "";
  Stmt s(db_, "UPDATE trials SET status = 'running', worker = ?, lease_token = ?, lease_expires = " + now +
                  " + ?, started_at = ? WHERE id = (SELECT id FROM trials WHERE study_id = ? AND (status = 'pending' OR"
                  " (status = 'running' AND (lease_expires IS NULL OR lease_expires < " + now + ")))"
                  " ORDER BY slot LIMIT 1" + lock + ") RETURNING " + kTrialCols);
  s.bind(1, worker).bind(2, token).bind(3, lease_s_).bind(4, utc_now()).bind(5, study);
  if (!s.step()) return std::nullopt;
  TrialRow t = read_trial(s);
  s.reset();
  // A trial that is redone starts with an empty curve and no rungs (one round trip).
  const std::string id = std::to_string(t.id);
  db_.exec("DELETE FROM trial_curves WHERE trial_id = " + id + "; DELETE FROM trial_task WHERE trial_id = " + id +
           "; DELETE FROM trial_rungs WHERE trial_id = " + id);
  t.rung = -1;
  t.loss = t.bpb = NAN;
  return t;
}

void StudyStore::write_curve(int64_t trial_id, int64_t rung, const std::vector<CurvePoint>& curve) {
  // Up to 64 points per statement (one round trip each).
  for (size_t start = 0; start < curve.size(); start += 64) {
    const size_t n = std::min<size_t>(64, curve.size() - start);
    std::string sql = "INSERT INTO trial_curves(trial_id, rung, step, tokens, train_loss, val_loss, lr) VALUES";
    for (size_t i = 0; i < n; ++i) sql += i ? ", (?,?,?,?,?,?,?)" : " (?,?,?,?,?,?,?)";
    sql += " ON CONFLICT(trial_id, rung, step) DO UPDATE SET tokens = excluded.tokens, train_loss = excluded.train_loss,"
           " val_loss = excluded.val_loss, lr = excluded.lr";
    Stmt c(db_, sql);
    for (size_t i = 0; i < n; ++i) {
      const CurvePoint& p = curve[start + i];
      const int b = int(7 * i);
      c.bind(b + 1, trial_id).bind(b + 2, rung).bind(b + 3, p.step).bind(b + 4, p.tokens);
      bind_real(c, b + 5, p.train_loss);
      bind_real(c, b + 6, p.val_loss);
      c.bind(b + 7, p.lr);
    }
    c.run();
  }
}

std::vector<CurvePoint> StudyStore::curve(int64_t trial_id, int rung) const {
  Stmt q(db_,
         "SELECT step, tokens, train_loss, val_loss, lr FROM trial_curves WHERE trial_id = ?1 AND rung = CASE WHEN ?2 >= 0"
         " THEN ?2 ELSE (SELECT MAX(rung) FROM trial_curves WHERE trial_id = ?1) END ORDER BY step");
  q.bind(1, trial_id).bind(2, int64_t(rung));
  std::vector<CurvePoint> out;
  while (q.step()) {
    CurvePoint p;
    p.step = q.int64(0);
    p.tokens = q.int64(1);
    p.train_loss = opt_real(q, 2);
    p.val_loss = opt_real(q, 3);
    p.lr = q.real(4);
    out.push_back(p);
  }
  return out;
}

}  // namespace flashnas
