// A search benchmark table: N architectures drawn uniformly from a space
// (those that meet its budgets and constraints, as a random search draws
// them), each trained to every rung, with its loss per rung, parameters and
// predicted latency per budget. Search algorithms are then compared by
// replaying them against the table, thousands of times, without training.
//
// The table is a study (random draws, promote = "all", trials = N) in the
// study database, so it is resumable after kill -9 and can be extended by
// more workers; bench_table_csv() writes it out as a small CSV:
//   trial, genome, d_model, params, status, <budget>_ms..., then per rung
//   loss_<tokens>, bpb_<tokens>, train_s_<tokens>   (empty where not reached)
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "search/config.h"
#include "study/study_store.h"

namespace flashnas {

// The study config of a bench table: `cfg` with random draws, every
// candidate promoted to every rung, N = `archs` trials; `fidelities`, when
// not empty, replaces [search] fidelities. InputError naming the flag when
// there are no rungs or N < 1.
SearchConfig bench_table_config(const SearchConfig& cfg, int64_t archs, const std::vector<int64_t>& fidelities);

// One row per trained architecture (failed ones included, with status
// "failed"), by trial number.
std::string bench_table_csv(const SearchConfig& cfg, const std::vector<TrialRow>& trials);

// A table read back from its CSV: the column names and the rows as text.
struct BenchTable {
  std::filesystem::path path;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<int64_t> rungs;  // from the loss_<tokens> columns, in order
  // Column index; InputError naming the file when absent.
  size_t column(const std::string& name) const;
  // The loss of every row at rung `tokens` (NaN where not reached);
  // InputError naming `flag`, the file and its rungs when there is no such rung.
  std::vector<double> losses(int64_t tokens, const std::string& flag) const;
};
// InputError naming the file and line for anything malformed.
BenchTable read_bench_table(const std::filesystem::path& csv);

// "16384,49152,131072" as positive token counts; InputError naming `flag`.
std::vector<int64_t> parse_token_list(const std::string& text, const std::string& flag);

// A bench table's counts: the architectures asked for, rows trained, rows
// complete at every rung, failed, drawn over the budgets (pruned), duplicates
// reused; the rungs' tokens; the study and database it was read from.
struct BenchTableSummary {
  int64_t archs = 0, rows = 0, complete = 0, failed = 0, pruned = 0, reused = 0;
  std::vector<int64_t> rungs;
  std::string study, db;
  json to_json() const;  // FILE.json's "summary" (and `bench-table --json`)
  // One line; `csv` is where the table was written ("" when it was not).
  std::string text(const std::string& csv) const;
};

BenchTableSummary bench_table_summary(const SearchConfig& cfg, const std::vector<TrialRow>& trials);

// FILE.json beside the CSV: format, summary, the config, the latency table
// the study priced with, threads and the build.
json bench_table_meta(const SearchConfig& cfg, const StudyRow& study, const BenchTableSummary& summary,
                      const std::string& config_source, int threads);

// Reads bench table `study` back from `db` (read-only): its summary, and
// when `csv` is given the CSV and FILE.json written there. InputError when
// the study is missing or was made with another config.
BenchTableSummary bench_table_read_back(const SearchConfig& cfg, const std::string& db, const std::string& study,
                                        const std::string& csv, const std::string& config_source, int threads);

}  // namespace flashnas
