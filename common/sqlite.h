// A thin RAII layer over the SQLite C API: open (WAL, busy timeout, foreign
// keys; or read-only, for commands that only read), exec, prepared statements
// with typed binds and reads, transactions. Errors are flashnas::Error naming
// the database file and SQLite's message.
#pragma once
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace flashnas {

class Db;

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binds are 1-based, as in SQLite.
  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);
  Stmt& bind_null(int i);
  // Steps once: true while a row is available.
  bool step();
  // Runs a statement that returns no rows.
  void run();
  void reset();

  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  bool is_null(int col) const;

 private:
  Db& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// How a command uses a database: `read_only` never writes to the file, its
// folder or its -wal/-shm files (a database on a read-only mount, or one the
// user may not write, can be read); `read_write` opens an existing flashnas
// database; `create` also makes a new one.
enum class Access { read_only, read_write, create };

class Db {
 public:
  // Opens the database; writable ones with WAL journaling and a busy timeout,
  // so several processes can share it. InputError, with the file unchanged,
  // when it is not a SQLite file, holds tables but no flashnas schema version
  // (someone else's database), is damaged (every page is checked, once per
  // process and file), or (unless `create`) is empty.
  Db(const std::filesystem::path& path, Access access);
  Db(const std::filesystem::path& path, bool create) : Db(path, create ? Access::create : Access::read_write) {}
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql);
  // Runs `ddl`, a list of "CREATE TABLE IF NOT EXISTS" and "CREATE INDEX IF
  // NOT EXISTS" statements. Read-only, it writes nothing: a table the file
  // lacks is made as an empty TEMP table (so reads find no rows), indexes are
  // left out.
  void ensure_tables(const std::string& ddl);
  bool read_only() const { return access_ == Access::read_only; }
  int64_t last_insert_id() const { return sqlite3_last_insert_rowid(db_); }
  [[noreturn]] void fail(const std::string& what) const;
  sqlite3* handle() { return db_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void open_read_only();
  void check_owner(bool create);
  void check_integrity();
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  Access access_;
};

// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ", for created_at columns.
std::string utc_now();

// Checks the schema version stored under `key` in the meta(key, value) table
// (created when missing), or records `version` in a new database (read-only:
// a missing key is left missing). InputError
// "<file>: <what> schema version V; this flashnas reads version N" otherwise.
void require_schema_version(Db& db, const std::string& key, int version, const std::string& what);

// BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted.
class Transaction {
 public:
  explicit Transaction(Db& db);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace flashnas
