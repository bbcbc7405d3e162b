// Shared by the search tests: a tiny staged space that trains in well under
// a second per candidate, a synthetic latency table for it, and a study
// folder (config, database) to run the CLI against.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "search/config.h"
#include "test_util.h"

namespace flashnas::test {

// The tiny space's config; `extra_search` is appended to [search], `budget`
// is the first budget's limit line, `mixers` the space's mixers (TOML array).
std::string tiny_config(const std::string& data, const std::string& extra_search = "",
                        const std::string& budget = "max_ms = 1000",
                        const std::string& mixers = R"(["swa", "mamba2", "deltanet"])");
void replace_once(std::string& s, const std::string& from, const std::string& to);
SearchConfig parse_config(const std::string& toml);
// A synthetic LUT holding every entry the config's space and budgets need:
// cost grows with width and (for attention-like ops) with context.
// With `verdict`, the table carries a profile report judging every budget's
// workload so (as flashnas profile --validate writes it).
void synthetic_lut(const SearchConfig& cfg, const std::filesystem::path& db, bool drop_one = false,
                   const std::string& verdict = "reliable");
// A small corpus prepared as a token file (byte-level).
std::filesystem::path tiny_data(const TempDir& dir);

struct Study {
  TempDir dir;
  std::string config, db;
  std::string artifacts;  // --artifacts for the CLI (set with a database URL: DIR/runs)
  // `db_url`: a PostgreSQL database to hold the study and its table instead of DIR/study.db.
  explicit Study(const std::string& extra_search = "", const std::string& budget = "max_ms = 1000",
                 bool drop_lut_entry = false, const std::string& verdict = "reliable", const std::string& db_url = "");
  std::vector<std::string> search_args(const std::string& study = "s") const;
};

// Runs study "s" of `st` with two worker processes and checks what every
// rung-ed study must hold whatever the workers' timing: within the token
// budget, every rung finished (or diverged, with its reason), the top rung
// (2) reached, both processes trained, no architecture trained twice.
// `err` of the run is printed on failure.
void expect_two_worker_rung_study(const Study& st);

// The first column of the first row of `sql`.
int64_t scalar(const std::string& db, const std::string& sql);

}  // namespace flashnas::test
