// `flashnas search` as one library call: the config with the command line's
// overrides (written into the config the study stores, so it says what ran),
// the extra worker processes of --workers N (this executable again, each
// told its parent's pid), this process's own worker loop, and the study's
// frontier once every worker is done. The command line only parses options
// and prints the result.
#pragma once
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "search/config.h"
#include "search/frontier.h"
#include "search/runner.h"

namespace flashnas {

struct SearchCommand {
  std::filesystem::path config;    // the search config (TOML)
  std::string algorithm;           // overrides [search].algorithm when not empty
  int64_t seed = -1;               // overrides [search].seed when >= 0
  int workers = 1;                 // worker processes in all, this one included (>= 1)
  pid_t parent = 0;                // > 0: this process is one of that parent's extra workers
  SearchOptions options;           // the study, databases, threads per worker, leases
  std::vector<std::string> repeat; // options every extra worker repeats (LUT, artifacts, leases)
};

struct SearchCommandResult {
  SearchSummary worker;                  // what this process did
  std::optional<FrontierReport> frontier;  // absent in an extra worker
  // The frontier's JSON with this worker's counts and times under "worker".
  json to_json() const;
  // Why the study stopped early (if it did), this worker's time, the summary and the table.
  std::string text() const;
};

// Runs the command: extra workers, this worker, the frontier. A stop by signal
// (Stopped) stops every extra worker at its safe point before it propagates;
// Error when an extra worker failed. `log` gets the progress lines.
SearchCommandResult run_search_command(const SearchCommand& c, const std::function<void(const std::string&)>& log);

}  // namespace flashnas
