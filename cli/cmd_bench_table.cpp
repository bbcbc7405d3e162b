// `flashnas bench-table`: a search benchmark table (search/bench_table.h):
// N architectures drawn from a space, each trained to every rung, stored as a
// resumable study and written out as CSV with a JSON description.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "common/stop.h"
#include "cli/study_options.h"
#include "common/files.h"
#include "search/bench_table.h"
#include "search/runner.h"

namespace flashnas::cli {
void add_bench_table_command(CLI::App& app) {
  struct Opts {
    std::string config, fidelities, csv;
    StudyOptions st;
    int64_t archs = 0;
    bool no_train = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "bench-table",
      "Train N architectures drawn from a space to every rung and write the losses as a search benchmark table "
      "(resumable; several processes may share one table)");
  cmd->add_option("--config", o->config, "Search config (TOML): space, budgets, training")->required();
  cmd->add_option("--archs", o->archs, "Architectures in the table")->required();
  cmd->add_option("--fidelities", o->fidelities,
                  "Rungs, training tokens increasing, comma-separated (default: the config's [search] fidelities)");
  cmd->add_option("--csv", o->csv, "Write the table here (and FILE.json: how it was made)");
  o->st.add_to(*cmd, "bench-table");
  cmd->add_flag("--no-train", o->no_train, "Only write --csv from what the table holds now");
  cmd->add_flag("--json", o->json, "Print the table's summary as JSON");
  cmd->callback([o] {
    const StopSignals stop_on_signals;  // a stop request ends at a safe point; the rerun resumes
    const SearchConfig cfg = bench_table_config(SearchConfig::load(o->config), o->archs, parse_token_list(o->fidelities, "--fidelities"));
    if (!o->csv.empty()) check_output_file(o->csv, "--csv");
    const SearchOptions so = o->st.apply();
    const std::string& db = o->st.db;
    const std::string& study_name = o->st.study;
    double wall_s = 0;
    if (!o->no_train) {
      std::fprintf(stderr, "bench-table: study \"%s\" in %s: %lld architectures, rungs", study_name.c_str(), db.c_str(),
                   static_cast<long long>(o->archs));
      for (const int64_t t : cfg.search.fidelities) std::fprintf(stderr, " %lld", static_cast<long long>(t));
      std::fprintf(stderr, " tokens, %d threads\n", so.threads);
      wall_s = run_search(cfg, so, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }).wall_s;
    }
    const BenchTableSummary summary = bench_table_read_back(cfg, db, study_name, o->csv, o->config, so.threads);
    if (o->json) {
      json j = summary.to_json();
      j["wall_s"] = wall_s;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s", summary.text(o->csv).c_str());
  });
}

}  // namespace flashnas::cli
