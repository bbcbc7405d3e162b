#include "study/study_copy.h"

#include <algorithm>

#include "common/db.h"
#include "common/error.h"
#include "common/json_io.h"
#include "profiler/lut.h"
#include "study/study_store.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

// The latency table's tables, parents first.
const std::vector<std::string> kLutTables = {"devices", "lut_entries", "lut_entry_rounds", "lut_runs", "lut_tables",
                                             "lut_validations"};

// The database as a study's lut_table records it.
std::string canonical(const std::string& db) {
  return is_database_url(db) ? db : fs::absolute(db).lexically_normal().string();
}

// Copies the rows `select` (over the shared columns, "{cols}" in it) returns
// from `from` into `table` of `to`, values by their stored type.
int64_t copy_rows(Db& from, Db& to, const std::string& table, const std::string& where,
                  const std::vector<std::string>& binds) {
  const auto src_cols = from.connection().table_columns(table);
  const auto dst_cols = to.connection().table_columns(table);
  std::string cols, marks;
  for (const auto& c : src_cols) {
    if (std::find(dst_cols.begin(), dst_cols.end(), c) == dst_cols.end()) continue;
    cols += (cols.empty() ? "" : ", ") + c;
    marks += marks.empty() ? "?" : ", ?";
  }
  if (cols.empty()) return 0;
  Stmt q(from, "SELECT " + cols + " FROM " + table + (where.empty() ? "" : " WHERE " + where));
  for (size_t i = 0; i < binds.size(); ++i) q.bind(int(i + 1), binds[i]);
  Stmt ins(to, "INSERT INTO " + table + "(" + cols + ") VALUES(" + marks + ")");
  int64_t n = 0;
  while (q.step()) {
    ins.reset();
    for (int c = 0; c < q.columns(); ++c) {
      switch (q.type(c)) {
        case ColumnType::null: ins.bind_null(c + 1); break;
        case ColumnType::integer: ins.bind(c + 1, q.int64(c)); break;
        case ColumnType::real: ins.bind(c + 1, q.real(c)); break;
        case ColumnType::text: ins.bind(c + 1, q.text(c)); break;
      }
    }
    ins.run();
    ++n;
  }
  to.connection().sync_ids(table);
  return n;
}

// Drops the tables of `dst` that are not in `before`, as far as it can: a
// clean-up on the way out of a failed copy, whose own error is the one
// reported.
void drop_new_tables(const std::string& dst, const std::vector<std::string>& before) {
  try {
    Db d(dst, Access::read_write);
    for (const auto& t : d.connection().table_names()) {
      if (std::find(before.begin(), before.end(), t) == before.end()) d.connection().drop_table(t);
    }
  } catch (const std::exception&) {
  }
}

}  // namespace

CopyReport copy_studies(const std::string& src, const std::string& dst, const std::vector<std::string>& names,
                        const fs::path& src_artifacts, const fs::path& dst_artifacts) {
  if (canonical(src) == canonical(dst)) throw InputError(dst + ": the same database as the source");
  if (!database_exists(src)) throw InputError(src + ": no such database");
  CopyReport rep;
  StudyStore from(src, Access::read_only);
  const auto all = from.study_names();
  rep.studies = names.empty() ? all : names;
  if (rep.studies.empty()) throw InputError(src + ": holds no studies to copy");
  bool same_lut = true;
  for (const auto& n : rep.studies) {
    const StudyRow s = from.get_study(n);  // InputError listing the studies when absent
    same_lut = same_lut && s.lut_table.value("db", "") == canonical(src);
  }
  const bool new_file = !is_database_url(dst) && !fs::exists(dst);
  // The tables an existing destination holds before the copy: on a failure
  // the ones the copy made are dropped again (the rows roll back, but making
  // the schema is not part of the copy's transaction).
  std::vector<std::string> before;
  if (!new_file) before = Db(dst, Access::create).connection().table_names();
  std::vector<fs::path> made;
  try {
    // The destination must hold no flashnas data: ids are kept as they are.
    {
      StudyStore to(dst, Access::create);
      LutStore lut_to(dst, Access::create);
      Db& d = to.db();
      for (const char* t : {"studies", "devices"}) {
        Stmt q(d, std::string("SELECT COUNT(*) FROM ") + t);
        if (q.step() && q.int64(0) > 0) {
          throw InputError(dst + ": already holds flashnas data (table " + t + "); copy into a new or empty database");
        }
      }
      Transaction tx(d);
      std::string in;
      for (size_t i = 0; i < rep.studies.size(); ++i) in += i ? ", ?" : "?";
      const std::string studies = "SELECT id FROM studies WHERE name IN (" + in + ")";
      const std::string trials = "SELECT id FROM trials WHERE study_id IN (" + studies + ")";
      if (same_lut && from.db().has_table("devices")) {
        for (const auto& t : kLutTables) {
          if (from.db().has_table(t)) rep.rows[t] = copy_rows(from.db(), d, t, "", {});
        }
        rep.lut = true;
      }
      rep.rows["studies"] = copy_rows(from.db(), d, "studies", "id IN (" + studies + ")", rep.studies);
      rep.rows["trials"] = copy_rows(from.db(), d, "trials", "study_id IN (" + studies + ")", rep.studies);
      for (const char* t : {"trial_rungs", "trial_curves", "trial_task"}) {
        if (from.db().has_table(t)) rep.rows[t] = copy_rows(from.db(), d, t, "trial_id IN (" + trials + ")", rep.studies);
      }
      // Work in flight at the source: its leases end, the copy's first worker takes it over.
      d.exec("UPDATE trials SET lease_expires = 0 WHERE status = 'running'");
      d.exec("UPDATE trial_rungs SET lease_expires = 0 WHERE status = 'running'");
      if (rep.lut) {
        for (const auto& n : rep.studies) {
          Stmt q(d, "SELECT lut_table FROM studies WHERE name = ?");
          q.bind(1, n);
          q.step();
          json lt = parse_json(q.text(0), dst + ": study \"" + n + "\", column lut_table");
          lt["db"] = canonical(dst);
          Stmt u(d, "UPDATE studies SET lut_table = ? WHERE name = ?");
          u.bind(1, lt.dump()).bind(2, n).run();
        }
      }
      if (!src_artifacts.empty() && !dst_artifacts.empty()) {
        for (const auto& n : rep.studies) {
          const fs::path from_dir = src_artifacts / n, to_dir = dst_artifacts / n;
          if (!fs::is_directory(from_dir)) continue;
          if (fs::exists(to_dir)) throw InputError(to_dir.string() + ": already exists; give an --artifacts folder without this study");
          fs::create_directories(dst_artifacts);
          made.push_back(to_dir);
          fs::copy(from_dir, to_dir, fs::copy_options::recursive);
          for (const auto& e : fs::recursive_directory_iterator(to_dir)) rep.artifact_files += e.is_regular_file() ? 1 : 0;
        }
      }
      tx.commit();
    }
  } catch (...) {
    std::error_code ec;
    for (const auto& p : made) fs::remove_all(p, ec);
    if (new_file) {
      for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(dst + suffix, ec);
    } else {
      drop_new_tables(dst, before);
    }
    throw;
  }
  return rep;
}

}  // namespace flashnas
