// Flags shared by the commands that run a study (search, bench-table): the
// database, the study, the latency table and the training threads, turned
// into the runner's SearchOptions.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "search/runner.h"

namespace flashnas::cli {

struct StudyOptions {
  std::string db, study, lut, lut_device, artifacts;
  int threads = 0;
  bool accept_unreliable = false;
  double lease_s = 60, db_retry_s = 300;

  // --db, --study (required unless `default_study` is given), --lut, --lut-device, --threads,
  // --accept-unreliable-lut, --lease-s, --db-retry-s.
  void add_to(CLI::App& cmd, const std::string& default_study = "");
  // InputError for a negative --threads; threads 0 become the cores divided among `workers`.
  SearchOptions apply(int workers = 1) const;
  // The latency-table and artifacts flags again, for a worker process's command line.
  std::vector<std::string> lut_args() const;
};

// --lease-s and --db-retry-s (search, worker).
void add_lease_options(CLI::App& cmd, double& lease_s, double& db_retry_s);

}  // namespace flashnas::cli
