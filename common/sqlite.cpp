#include "common/sqlite.h"

#include <algorithm>
#include <ctime>
#include <vector>

#include "common/error.h"

namespace flashnas {

Db::Db(const std::filesystem::path& path, bool create) : path_(path) {
  std::error_code ec;
  if (!create && !std::filesystem::exists(path, ec)) throw InputError(path.string() + ": no such database");
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw InputError(path.string() + ": cannot open database: " + msg);
  }
  sqlite3_busy_timeout(db_, 30000);
  try {
    check_owner(create);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
}

// flashnas changes only its own databases (those with a schema version in
// `meta`) and new, empty ones; this runs before the first write (even the WAL
// pragma rewrites the file's header).
void Db::check_owner(bool create) {
  std::vector<std::string> tables;
  bool marked = false;
  auto query = [&](const char* sql, auto&& row) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
      throw InputError(path_.string() + ": not a flashnas database (SQLite says: " + sqlite3_errmsg(db_) + ")");
    }
  };
  query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        [&](sqlite3_stmt* st) { tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))); });
  if (std::find(tables.begin(), tables.end(), "meta") != tables.end()) {
    query("SELECT COUNT(*) FROM meta WHERE key LIKE '%schema_version'",
          [&](sqlite3_stmt* st) { marked = sqlite3_column_int64(st, 0) > 0; });
  }
  if (marked) return;
  if (!tables.empty()) {
    std::string list;
    for (size_t i = 0; i < tables.size() && i < 5; ++i) list += (i ? ", " : "") + tables[i];
    if (tables.size() > 5) list += ", ...";
    throw InputError(path_.string() + ": not a flashnas database (it holds the tables " + list +
                     "); flashnas writes only to its own databases or to new files: give another path");
  }
  if (!create) throw InputError(path_.string() + ": holds no flashnas data (an empty database)");
}

Db::~Db() {
  if (db_) sqlite3_close_v2(db_);
}

void Db::fail(const std::string& what) const {
  throw Error(path_.string() + ": " + what + ": " + sqlite3_errmsg(db_));
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw Error(path_.string() + ": " + msg + " (in: " + sql.substr(0, 80) + ")");
  }
}

Stmt::Stmt(Db& db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    db.fail("cannot prepare \"" + sql.substr(0, 80) + "\"");
  }
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::bind(int i, int64_t v) {
  if (sqlite3_bind_int64(stmt_, i, v) != SQLITE_OK) db_.fail("bind");
  return *this;
}
Stmt& Stmt::bind(int i, double v) {
  if (sqlite3_bind_double(stmt_, i, v) != SQLITE_OK) db_.fail("bind");
  return *this;
}
Stmt& Stmt::bind(int i, const std::string& v) {
  if (sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) != SQLITE_OK) db_.fail("bind");
  return *this;
}
Stmt& Stmt::bind_null(int i) {
  if (sqlite3_bind_null(stmt_, i) != SQLITE_OK) db_.fail("bind");
  return *this;
}

bool Stmt::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail("statement failed");
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
}
bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void require_schema_version(Db& db, const std::string& key, int version, const std::string& what) {
  db.exec("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  Stmt q(db, "SELECT value FROM meta WHERE key = ?");
  q.bind(1, key);
  if (q.step()) {
    const std::string v = q.text(0);
    if (v != std::to_string(version)) {
      throw InputError(db.path().string() + ": " + what + " schema version " + v + "; this flashnas reads version " +
                       std::to_string(version));
    }
    return;
  }
  Stmt ins(db, "INSERT OR IGNORE INTO meta(key, value) VALUES(?, ?)");
  ins.bind(1, key).bind(2, std::to_string(version)).run();
}

Transaction::Transaction(Db& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
Transaction::~Transaction() {
  if (!done_) {
    try {
      db_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace flashnas
