#include "common/db.h"

#include <chrono>
#include <ctime>
#include <thread>

#include "common/error.h"
#include "common/postgres.h"
#include "common/sqlite.h"

namespace flashnas {

bool is_database_url(const std::string& target) {
  return target.rfind("postgresql://", 0) == 0 || target.rfind("postgres://", 0) == 0;
}

bool database_exists(const std::string& target) {
  std::error_code ec;
  return is_database_url(target) || std::filesystem::exists(target, ec);
}

std::filesystem::path artifacts_root(const std::string& db, const std::filesystem::path& artifacts) {
  if (!artifacts.empty()) return artifacts;
  if (is_database_url(db)) {
    throw InputError("--artifacts: needed with a PostgreSQL --db: trial weights and checkpoints are files; give a "
                     "folder every worker can reach (a shared filesystem path)");
  }
  return std::filesystem::path(db + ".runs");
}

Db::Db(const std::string& target, Access access) : path_(target), access_(access) {
  conn_ = is_database_url(target) ? open_postgres(target, access) : open_sqlite(target, access);
}

Db::~Db() = default;

void Db::ensure_tables(const std::string& ddl) {
  if (!read_only()) return conn_->create_tables(ddl);
  static const std::string kTable = "CREATE TABLE IF NOT EXISTS ", kIndex = "CREATE INDEX IF NOT EXISTS ";
  size_t start = 0;
  while (start < ddl.size()) {
    size_t end = ddl.find(';', start);
    if (end == std::string::npos) end = ddl.size();
    std::string stmt = ddl.substr(start, end - start);
    start = end + 1;
    stmt.erase(0, stmt.find_first_not_of(" \n\t"));
    if (stmt.empty() || stmt.rfind(kIndex, 0) == 0) continue;  // indexes: left out when reading
    if (stmt.rfind(kTable, 0) != 0) throw Error("ensure_tables: not a CREATE TABLE/INDEX IF NOT EXISTS: " + stmt.substr(0, 60));
    const std::string name = stmt.substr(kTable.size(), stmt.find_first_of("( ", kTable.size()) - kTable.size());
    if (!conn_->has_table(name)) conn_->create_temp_table(stmt.substr(kTable.size()));
  }
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void with_db_retry(Db& db, const std::function<void()>& work, double window_s,
                   const std::function<void(const std::string&)>& log) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double wait_s = 0.5;
  int failures = 0;
  for (;;) {
    try {
      if (failures > 0) db.reconnect();
      work();
      if (failures > 0 && log) log(db.path().string() + ": the database is back after " + std::to_string(failures) + " failed tries");
      return;
    } catch (const DbUnavailable& e) {
      const double waited = std::chrono::duration<double>(clock::now() - start).count();
      if (waited + wait_s > window_s) {
        throw DbUnavailable(std::string(e.what()) + " (tried again for " + std::to_string(int(waited)) + " s)");
      }
      if (failures++ == 0 && log) log(std::string(e.what()) + "; trying again for up to " + std::to_string(int(window_s)) + " s");
      std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
      wait_s = std::min(5.0, wait_s * 2);
    }
  }
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void require_schema_version(Db& db, const std::string& key, int version, const std::string& what) {
  db.ensure_tables("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)");
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
  if (db.read_only()) return;
  Stmt ins(db, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT DO NOTHING");
  ins.bind(1, key).bind(2, std::to_string(version)).run();
}

Transaction::Transaction(Db& db, Lock lock) : db_(db) {
  if (lock == Lock::rows) db_.connection().begin_rows();
  else db_.connection().begin_write();
}
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
