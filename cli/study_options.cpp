#include "cli/study_options.h"

#include "common/db.h"
#include "common/error.h"
#include "common/files.h"
#include "common/threads.h"

namespace flashnas::cli {

void StudyOptions::add_to(CLI::App& cmd, const std::string& default_study) {
  cmd.add_option("--db", db, "Study database (and, by default, the LUT's): a SQLite file, or postgresql://user@host:port/dbname")
      ->required();
  cmd.add_option("--artifacts", artifacts, "Folder for the trials' runs (default: DB.runs; required with a PostgreSQL --db)");
  auto* s = cmd.add_option("--study", study, "Study name; rerunning with the same name resumes it");
  if (default_study.empty()) {
    s->required();
  } else {
    study = default_study;
    s->capture_default_str();
  }
  cmd.add_option("--lut", lut, "LUT database, when not in --db");
  cmd.add_option("--lut-device", lut_device, "LUT device fingerprint, when the LUT holds several");
  cmd.add_option("--threads", threads, "Training threads per worker (0: the cores, shared among workers)")
      ->capture_default_str();
  cmd.add_flag("--accept-unreliable-lut", accept_unreliable,
               "Use a latency table whose verdict is unreliable or that was never validated (the study records it)");
  add_lease_options(cmd, lease_s, db_retry_s);
}

void add_lease_options(CLI::App& cmd, double& lease_s, double& db_retry_s) {
  cmd.add_option("--lease-s", lease_s,
                 "Seconds a claimed trial stays leased without a heartbeat (renewed every third of it); a crashed "
                 "worker's trial is taken over after this")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0));
  cmd.add_option("--db-retry-s", db_retry_s,
                 "Seconds a worker waits for a database that went away (a server restart) before it gives up")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
}

SearchOptions StudyOptions::apply(int workers) const {
  if (threads < 0) throw InputError("--threads: must be >= 0");
  check_path_name(study, "--study");
  SearchOptions so;
  so.db = db;
  so.lut_db = lut;
  so.artifacts = artifacts_root(db, artifacts);  // refuses a PostgreSQL --db without --artifacts, before anything runs
  so.study = study;
  so.lut_device = lut_device;
  so.accept_unreliable_lut = accept_unreliable;
  so.lease_s = lease_s;
  so.db_retry_s = db_retry_s;
  so.threads = threads_per_worker(threads, workers, "--threads");
  return so;
}

std::vector<std::string> StudyOptions::lut_args() const {
  std::vector<std::string> a;
  if (!lut.empty()) a.insert(a.end(), {"--lut", lut});
  if (!lut_device.empty()) a.insert(a.end(), {"--lut-device", lut_device});
  if (accept_unreliable) a.push_back("--accept-unreliable-lut");
  if (!artifacts.empty()) a.insert(a.end(), {"--artifacts", artifacts});
  a.insert(a.end(), {"--lease-s", std::to_string(lease_s), "--db-retry-s", std::to_string(db_retry_s)});
  return a;
}

}  // namespace flashnas::cli
