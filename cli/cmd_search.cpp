// `flashnas search`: run (or resume) a study: aging evolution or random
// search against latency budgets, candidates short-trained, every trial in
// SQLite. --workers N runs N worker processes on the same database.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/study_options.h"
#include "common/stop.h"
#include "search/search_command.h"

namespace flashnas::cli {

void add_search_command(CLI::App& app) {
  struct Opts {
    std::string config, algorithm;
    StudyOptions st;
    int workers = 1;
    int64_t seed = -1;
    int64_t parent = 0;  // --worker-child: the parent's pid
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("search", "Search architectures against latency budgets (resumable study in SQLite)");
  cmd->add_option("--config", o->config, "Search config (TOML): space, budgets, training, search settings")->required();
  o->st.add_to(*cmd);
  cmd->add_option("--algorithm", o->algorithm,
                  "Override [search].algorithm: guided, evolution or random (e.g. a random-search baseline study from "
                  "the same config)");
  cmd->add_option("--seed", o->seed, "Override [search].seed (e.g. repeats of a study with other seeds)");
  cmd->add_option("--workers", o->workers, "Worker processes sharing the study")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the final summary as JSON");
  cmd->add_option("--worker-child", o->parent, "Internal: run as one of --workers' extra processes of this parent")->group("");
  cmd->callback([o] {
    const StopSignals stop_on_signals(/*second_ends=*/o->parent <= 0);
    SearchCommand c;
    c.config = o->config;
    c.algorithm = o->algorithm;
    c.seed = o->seed;
    c.workers = o->workers;
    c.parent = pid_t(o->parent);
    c.options = o->st.apply(o->workers);
    c.repeat = o->st.lut_args();
    const SearchCommandResult r = run_search_command(c, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    if (c.parent > 0) return;
    if (o->json) {
      std::cout << r.to_json().dump(2) << "\n";
      return;
    }
    std::fputs(r.text().c_str(), stdout);
  });
}

}  // namespace flashnas::cli
