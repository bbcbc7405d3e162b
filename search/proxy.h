// `flashnas proxy`: how well does short training rank architectures? N
// architectures (drawn from a config's space, or a study's trained trials)
// are each trained with the config's recipe at two token budgets, and the
// two validation losses are compared: Spearman rho and Kendall tau-b, each
// with a bootstrap 90% interval (1000 resamples of the architectures, fixed
// seed), and the top-k overlap (k = N/4: the share of the k best by the short
// run that are among the k best by the long one). The paper reports rho =
// 0.888 between short and full training.
//
// Resumable like a study: every (architecture, tokens) run is a row of
// proxy_runs, committed when it ends; a rerun trains only the missing ones
// (a run killed in flight is redone). Reports go to proxy_reports. Tables
// are versioned by meta key proxy_schema_version. Run folders:
// <db>.runs/proxy-<name>/<arch hash>-<tokens>/ (weights kept, checkpoint removed).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/json_io.h"
#include "search/config.h"

namespace flashnas {

inline constexpr int kProxySchemaVersion = 1;

struct ProxyOptions {
  std::filesystem::path db;
  std::filesystem::path artifacts;  // run folders (default: <db>.runs; required with a PostgreSQL db)
  std::string name = "proxy";  // the experiment's name (a folder name: letters, digits, . _ -)
  int archs = 24;
  int64_t short_tokens = 0, long_tokens = 0;
  std::string study;           // take the architectures from this study's trained trials instead
  int threads = 0;             // training threads; 0: the recipe's
  uint64_t seed = 1;           // architecture draws and the bootstrap
};

struct RankAgreement {
  double value = NAN, lo = NAN, hi = NAN;  // the statistic and its bootstrap 90% interval
};

struct ProxyReport {
  int n = 0, failed = 0, k = 0;
  RankAgreement spearman, kendall;
  double top_k_overlap = NAN;
  json rows;  // per architecture: hash, text, short and long loss
  json to_json() const;
};

// Kendall's tau-b (ties in either ranking handled); NaN for < 2 points.
double kendall_tau(const std::vector<double>& a, const std::vector<double>& b);
// The bootstrap 90% interval of stat(a, b) over resamples of the pairs.
RankAgreement bootstrap(const std::vector<double>& a, const std::vector<double>& b,
                        const std::function<double(const std::vector<double>&, const std::vector<double>&)>& stat,
                        uint64_t seed, int resamples = 1000);
// The share of the k lowest of `a` that are among the k lowest of `b`.
double top_k_overlap(const std::vector<double>& a, const std::vector<double>& b, int k);

// The report for paired losses of the same architectures (NaN: failed);
// `ids` are (hash, genome text) for the rows.
ProxyReport agreement(const std::vector<std::pair<std::string, std::string>>& ids, const std::vector<double>& short_loss,
                      const std::vector<double>& long_loss, uint64_t seed);
// The report from two rungs of a bench table (search/bench_table.h), no training.
ProxyReport proxy_from_table(const std::filesystem::path& csv, int64_t short_tokens, int64_t long_tokens, uint64_t seed);

// Checks the options (InputError naming the flag, before anything is
// written), trains what is missing and returns (and stores) the report.
ProxyReport run_proxy(const SearchConfig& cfg, const ProxyOptions& o, const std::function<void(const std::string&)>& log);

// What a proxy report is about: the space, constraints and training recipe
// of a config (not its search settings), as a hash. Reports carry it as
// "space_key", so a study of the same space and recipe can quote them.
std::string proxy_key(const json& config_doc);
// The newest report in `db` with this key (null when none, or no proxy tables).
json latest_proxy_report(const std::filesystem::path& db, const std::string& key);

}  // namespace flashnas
