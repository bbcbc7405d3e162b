#include "common/sqlite.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <vector>

#include "common/error.h"

namespace flashnas {

namespace {

// `path` as an SQLite URI ("file:" and the path with every byte outside the
// unreserved set and '/' percent-encoded), for opening with URI parameters.
std::string file_uri(const std::filesystem::path& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string uri = "file:";
  for (const unsigned char c : std::filesystem::absolute(path).string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += char(c);
    } else {
      uri += '%';
      uri += hex[c >> 4];
      uri += hex[c & 15];
    }
  }
  return uri;
}

bool writable(const std::filesystem::path& p) { return ::access(p.c_str(), W_OK) == 0; }

// sqlite3_open_v2, or InputError "<path>: cannot open database<what>: <SQLite's message>".
sqlite3* open_db(const std::filesystem::path& path, const std::string& target, int flags, const std::string& what) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(target.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw InputError(path.string() + ": cannot open database" + what + ": " + msg);
  }
  return db;
}

class SqliteConnection : public Connection {
 public:
  SqliteConnection(const std::filesystem::path& path, Access access);
  ~SqliteConnection() override;
  Dialect dialect() const override { return Dialect::sqlite; }
  void exec(const std::string& sql) override;
  std::unique_ptr<Cursor> prepare(const std::string& sql) override;
  void create_tables(const std::string& ddl) override { exec(ddl); }
  void create_temp_table(const std::string& body) override;
  void begin_write() override { exec("BEGIN IMMEDIATE"); }
  void begin_rows() override { exec("BEGIN IMMEDIATE"); }
  void reconnect() override {}
  void session(const std::string& sql) override { exec(sql); }
  std::string epoch_sql() const override { return "((julianday('now') - 2440587.5) * 86400.0)"; }
  bool has_table(const std::string& name) override;
  std::vector<std::string> table_columns(const std::string& table) override;
  std::vector<std::string> table_names() override;
  void drop_table(const std::string& table) override { exec("DROP TABLE IF EXISTS \"" + table + "\""); }
  void sync_ids(const std::string&) override {}
  [[noreturn]] void fail(const std::string& what) const;
  sqlite3* handle() { return db_; }

 private:
  void open_read_only();
  void check_owner(bool create);
  void check_integrity();
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  Access access_;
};

class SqliteCursor : public Cursor {
 public:
  SqliteCursor(SqliteConnection& db, const std::string& sql);
  ~SqliteCursor() override { sqlite3_finalize(stmt_); }
  void bind_int(int i, int64_t v) override { check(sqlite3_bind_int64(stmt_, i, v)); }
  void bind_real(int i, double v) override { check(sqlite3_bind_double(stmt_, i, v)); }
  void bind_text(int i, const std::string& v) override {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void bind_null(int i) override { check(sqlite3_bind_null(stmt_, i)); }
  bool step() override;
  void reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  int64_t int64(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const override { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const override {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : "";
  }
  bool is_null(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  ColumnType type(int col) const override {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_NULL: return ColumnType::null;
      case SQLITE_INTEGER: return ColumnType::integer;
      case SQLITE_FLOAT: return ColumnType::real;
      default: return ColumnType::text;
    }
  }
  int columns() const override { return sqlite3_column_count(stmt_); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) db_.fail("bind");
  }
  SqliteConnection& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace

SqliteConnection::SqliteConnection(const std::filesystem::path& path, Access access) : path_(path), access_(access) {
  std::error_code ec;
  if (access != Access::create && !std::filesystem::exists(path, ec)) throw InputError(path.string() + ": no such database");
  if (access == Access::read_only) {
    open_read_only();
  } else {
    // SQLite writes the file and, beside it, its -wal and -shm files.
    const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
    std::string blocked;
    if (std::filesystem::exists(path, ec) && !writable(path)) {
      blocked = "the file";
    } else if (std::filesystem::is_directory(folder, ec) && !writable(folder)) {
      blocked = "its folder " + folder.string();
    }
    if (!blocked.empty()) {
      throw InputError(path.string() + ": this command writes to its database, and " + blocked + " cannot be written (" +
                       std::strerror(errno) + "); give a database in a writable folder");
    }
    const int flags = SQLITE_OPEN_READWRITE | (access == Access::create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
    db_ = open_db(path, path.string(), flags, "");
  }
  sqlite3_busy_timeout(db_, 30000);
  try {
    check_owner(access == Access::create);
    check_integrity();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
  if (access_ == Access::read_only) return;
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=NORMAL");
  exec("PRAGMA foreign_keys=ON");
}

// A reading command must work where the user may not write. Where the file and
// its folder are writable, the connection is opened for writing but made
// query-only: SQLite then removes its -wal and -shm files on closing, as it
// would for a writer (a read-only connection leaves them behind). Otherwise it
// is opened read-only; a WAL database in a folder SQLite cannot create its
// -shm file in (a read-only mount) is read as immutable: nothing can be
// writing it there.
void SqliteConnection::open_read_only() {
  const std::string p = path_.string();
  const std::filesystem::path folder = std::filesystem::absolute(path_).parent_path();
  std::error_code ec;
  std::string target = p;
  int flags = SQLITE_OPEN_FULLMUTEX;
  if (writable(path_) && writable(folder)) {
    flags |= SQLITE_OPEN_READWRITE;
  } else {
    flags |= SQLITE_OPEN_READONLY;
    if (!writable(folder) && !std::filesystem::exists(p + "-shm", ec)) {
      const auto wal = std::filesystem::file_size(p + "-wal", ec);
      if (!ec && wal > 0) {
        throw InputError(p + "-wal: holds changes not yet written into the database, and the folder is read-only, so "
                         "SQLite cannot apply them: copy the database with its -wal file to a writable folder");
      }
      target = file_uri(path_) + "?immutable=1";
      flags |= SQLITE_OPEN_URI;
    }
  }
  db_ = open_db(path_, target, flags, " for reading");
  if (flags & SQLITE_OPEN_READWRITE) exec("PRAGMA query_only=ON");
}

// flashnas changes only its own databases (those with a schema version in
// `meta`) and new, empty ones; this runs before the first write (even the WAL
// pragma rewrites the file's header).
void SqliteConnection::check_owner(bool create) {
  std::vector<std::string> tables;
  bool marked = false;
  auto query = [&](const char* sql, auto&& row) {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &st, nullptr);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) return;
    // A disk that is full or failing (SQLite cannot make its -shm file, or
    // read a page) is the machine's fault, not the file's: say so, exit 1.
    const int primary = rc & 0xff;
    if (primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN || primary == SQLITE_NOMEM) {
      throw IoError(path_.string() + ": cannot be read here (SQLite says: " + sqlite3_errmsg(db_) +
                    "); is its disk full or failing? The file was not changed");
    }
    throw InputError(path_.string() + ": not a flashnas database (SQLite says: " + sqlite3_errmsg(db_) + ")");
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

// SQLite finds a damaged page only when a statement reads it, so a command
// could work on, or write into, a database that is already damaged. Every
// page is checked once per process and file (PRAGMA quick_check: about 0.1 s
// for a 12 MB latency table).
void SqliteConnection::check_integrity() {
  static std::mutex mu;
  static std::set<std::string> checked;
  std::error_code ec;
  const auto key = std::filesystem::weakly_canonical(path_, ec).string();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (checked.count(key)) return;
  }
  std::string verdict;
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(db_, "PRAGMA quick_check(1)", -1, &st, nullptr);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) verdict = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  if (verdict != "ok") {
    throw InputError(path_.string() + ": the database is damaged (SQLite's check: " +
                     (verdict.empty() ? std::string(sqlite3_errmsg(db_)) : verdict) +
                     "); restore it from a copy, or save what is still sound with the sqlite3 shell's .recover");
  }
  std::lock_guard<std::mutex> lock(mu);
  checked.insert(key);
}

SqliteConnection::~SqliteConnection() {
  if (db_) sqlite3_close_v2(db_);
}

void SqliteConnection::fail(const std::string& what) const {
  const int code = sqlite3_errcode(db_) & 0xff;
  const std::string msg = path_.string() + ": " + what + ": " + sqlite3_errmsg(db_);
  // Still locked by another process after the busy timeout: worth another try.
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) throw DbUnavailable(msg);
  throw Error(msg);
}

void SqliteConnection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = path_.string() + ": " + (err ? err : "unknown error") + " (in: " + sql.substr(0, 80) + ")";
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) throw DbUnavailable(msg);
    throw Error(msg);
  }
}

void SqliteConnection::create_temp_table(const std::string& body) {
  // TEMP tables live in this connection's memory, not in the file; a
  // query-only connection must allow them for the moment.
  exec("PRAGMA query_only=OFF");
  exec("CREATE TEMP TABLE IF NOT EXISTS " + body);
  exec("PRAGMA query_only=ON");
}

SqliteCursor::SqliteCursor(SqliteConnection& db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
    db.fail("cannot prepare \"" + sql.substr(0, 80) + "\"");
  }
}

bool SqliteCursor::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail("statement failed");
}

bool SqliteConnection::has_table(const std::string& name) {
  SqliteCursor q(*this, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?");
  q.bind_text(1, name);
  q.step();
  const bool here = q.int64(0) > 0;
  if (here) return true;
  SqliteCursor t(*this, "SELECT COUNT(*) FROM sqlite_temp_master WHERE type = 'table' AND name = ?");
  t.bind_text(1, name);
  t.step();
  return t.int64(0) > 0;
}

std::vector<std::string> SqliteConnection::table_columns(const std::string& table) {
  SqliteCursor q(*this, "SELECT name FROM pragma_table_info(?) ORDER BY cid");
  q.bind_text(1, table);
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

std::vector<std::string> SqliteConnection::table_names() {
  SqliteCursor q(*this, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                        " ORDER BY name");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

std::unique_ptr<Cursor> SqliteConnection::prepare(const std::string& sql) {
  return std::make_unique<SqliteCursor>(*this, sql);
}

std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& path, Access access) {
  return std::make_unique<SqliteConnection>(path, access);
}

}  // namespace flashnas
