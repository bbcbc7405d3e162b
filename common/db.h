// flashnas's databases: one interface, two backends (as Optuna's storage
// layer). A database is a SQLite file (the embedded default: a path) or a
// PostgreSQL database (a URL "postgresql://user@host:port/dbname"; libpq's
// environment variables and ~/.pgpass supply what the URL leaves out, and a
// password in the URL is refused, so that none reaches a command line or a
// log). The stores (studies, the latency table, proxy runs) write one SQL for
// both, in SQLite's dialect where the two differ; the PostgreSQL backend
// rewrites "?"/"?N" parameters to $N, INSERT OR REPLACE/IGNORE to its
// ON CONFLICT forms, and in schemas INTEGER to BIGINT, REAL to DOUBLE
// PRECISION and "INTEGER PRIMARY KEY" to an identity column
// (common/postgres.h). ON CONFLICT upserts and RETURNING work in both.
//
// Errors are flashnas::Error (InputError for what the user can fix: a bad
// path or URL, a database that is not flashnas's, a server that refuses)
// naming the database (the file, or the URL) and the backend's message.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace flashnas {

// How a command uses a database: `read_only` never writes to it (a SQLite
// file on a read-only mount, or one the user may not write, can be read);
// `read_write` opens an existing flashnas database; `create` also makes a new
// one (a new SQLite file; on PostgreSQL, flashnas's tables in an empty database).
enum class Access { read_only, read_write, create };

enum class Dialect { sqlite, postgresql };

// True for "postgresql://..." and "postgres://..." (libpq's URL forms).
bool is_database_url(const std::string& target);
// A SQLite file that exists, or any URL (its server says, when connected to,
// whether the database is there).
bool database_exists(const std::string& target);
// Where a study's run folders go: `artifacts` when given; next to a SQLite
// file, "<db>.runs"; a PostgreSQL database needs `artifacts` (InputError
// naming --artifacts: weights are files, and every worker must reach them).
std::filesystem::path artifacts_root(const std::string& db, const std::filesystem::path& artifacts);

enum class ColumnType { null, integer, real, text };

// A backend's prepared statement. Binds are 1-based; columns 0-based.
class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual void bind_int(int i, int64_t v) = 0;
  virtual void bind_real(int i, double v) = 0;  // NaN is stored as NULL (as SQLite does)
  virtual void bind_text(int i, const std::string& v) = 0;
  virtual void bind_null(int i) = 0;
  virtual bool step() = 0;  // true while a row is available
  virtual void reset() = 0;  // ready to run again; binds cleared
  virtual int64_t int64(int col) const = 0;
  virtual double real(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual bool is_null(int col) const = 0;
  virtual ColumnType type(int col) const = 0;  // of this row's value
  virtual int columns() const = 0;             // in the result (after step)
};

// A backend's connection.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  virtual void exec(const std::string& sql) = 0;  // one or more statements, no parameters
  virtual std::unique_ptr<Cursor> prepare(const std::string& sql) = 0;
  // Runs "CREATE TABLE/INDEX IF NOT EXISTS ..." statements (a writable database).
  virtual void create_tables(const std::string& ddl) = 0;
  // "CREATE TEMP TABLE IF NOT EXISTS " + `body`, allowed on a read-only
  // connection: the table lives in this connection only.
  virtual void create_temp_table(const std::string& body) = 0;
  virtual void begin_write() = 0;  // a transaction that will write (SQLite: BEGIN IMMEDIATE)
  // A transaction that writes only rows it locks itself (PostgreSQL: no
  // database-wide writer lock, so it runs beside one; SQLite: BEGIN IMMEDIATE).
  virtual void begin_rows() = 0;
  // Connects again after DbUnavailable (SQLite: nothing to do). DbUnavailable
  // while the database is still away.
  virtual void reconnect() = 0;
  // Runs a session setting ("SET ...", "PRAGMA ...") now and again after every reconnect.
  virtual void session(const std::string& sql) = 0;
  // An SQL expression for the database server's clock, in seconds since
  // 1970 (a double): leases are judged by one clock, whatever the workers' clocks say.
  virtual std::string epoch_sql() const = 0;
  virtual bool has_table(const std::string& name) = 0;  // in the database, or a TEMP table of this connection
  // The columns of `table` in the database, in order (empty: no such table).
  virtual std::vector<std::string> table_columns(const std::string& table) = 0;
  // The database's tables (PostgreSQL: of the connection's schema; no TEMP
  // tables, no SQLite internals), sorted.
  virtual std::vector<std::string> table_names() = 0;
  // Drops `table` if it exists, with what depends on it (PostgreSQL: CASCADE).
  virtual void drop_table(const std::string& table) = 0;
  // After rows were written with explicit ids: the next generated id
  // follows the largest (PostgreSQL's identity sequences; SQLite: nothing to do).
  virtual void sync_ids(const std::string& table) = 0;
};

class Db {
 public:
  // Opens a SQLite file or, for a postgresql:// URL, a PostgreSQL database.
  // SQLite: writable ones with WAL journaling and a busy timeout, so several
  // processes can share it. InputError, with the database unchanged, when it
  // is not flashnas's (tables but no flashnas schema version), is damaged
  // (SQLite: every page is checked, once per process and file), cannot be
  // reached, or (unless `create`) holds nothing.
  Db(const std::string& target, Access access);
  Db(const std::filesystem::path& path, Access access) : Db(path.string(), access) {}
  Db(const std::filesystem::path& path, bool create) : Db(path.string(), create ? Access::create : Access::read_write) {}
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const std::string& sql) { conn_->exec(sql); }
  // Runs `ddl`, a list of "CREATE TABLE IF NOT EXISTS" and "CREATE INDEX IF
  // NOT EXISTS" statements. Read-only, it writes nothing: a table the
  // database lacks is made as an empty TEMP table (so reads find no rows),
  // indexes are left out.
  void ensure_tables(const std::string& ddl);
  bool read_only() const { return access_ == Access::read_only; }
  bool has_table(const std::string& name) { return conn_->has_table(name); }
  Dialect dialect() const { return conn_->dialect(); }
  void reconnect() { conn_->reconnect(); }
  void session(const std::string& sql) { conn_->session(sql); }
  std::string epoch_sql() const { return conn_->epoch_sql(); }
  // The database as messages name it: the SQLite file, or the URL.
  const std::filesystem::path& path() const { return path_; }
  Connection& connection() { return *conn_; }

 private:
  std::unique_ptr<Connection> conn_;
  std::filesystem::path path_;
  Access access_;
};

class Stmt {
 public:
  Stmt(Db& db, const std::string& sql) : cur_(db.connection().prepare(sql)) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v) { return cur_->bind_int(i, v), *this; }
  Stmt& bind(int i, double v) { return cur_->bind_real(i, v), *this; }
  Stmt& bind(int i, const std::string& v) { return cur_->bind_text(i, v), *this; }
  Stmt& bind_null(int i) { return cur_->bind_null(i), *this; }
  // Steps once: true while a row is available.
  bool step() { return cur_->step(); }
  // Runs a statement that returns no rows (or ignores them).
  void run();
  void reset() { cur_->reset(); }

  int64_t int64(int col) const { return cur_->int64(col); }
  double real(int col) const { return cur_->real(col); }
  std::string text(int col) const { return cur_->text(col); }
  bool is_null(int col) const { return cur_->is_null(col); }
  ColumnType type(int col) const { return cur_->type(col); }
  int columns() const { return cur_->columns(); }

 private:
  std::unique_ptr<Cursor> cur_;
};

// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ", for created_at columns.
std::string utc_now();

// Checks the schema version stored under `key` in the meta(key, value) table
// (created when missing), or records `version` in a new database (read-only:
// a missing key is left missing). InputError
// "<database>: <what> schema version V; this flashnas reads version N" otherwise.
void require_schema_version(Db& db, const std::string& key, int version, const std::string& what);

// Runs `work` (which uses `db`) and, while it throws DbUnavailable, connects
// again and reruns it, waiting 0.5 s and then up to 5 s between tries, for
// at most `window_s` seconds; then the last DbUnavailable is thrown. `work`
// must be safe to rerun: one transaction, or reads. `log` hears of the first
// failure and of the recovery.
void with_db_retry(Db& db, const std::function<void()>& work, double window_s,
                   const std::function<void(const std::string&)>& log);

// A write transaction (SQLite: BEGIN IMMEDIATE); rolls back when destroyed
// uncommitted. `rows`: one that writes only rows it locks (Connection::begin_rows).
class Transaction {
 public:
  enum class Lock { writer, rows };
  explicit Transaction(Db& db, Lock lock = Lock::writer);
  ~Transaction();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace flashnas
