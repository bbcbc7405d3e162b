// `flashnas search`: run (or resume) a study: aging evolution or random
// search against latency budgets, candidates short-trained, every trial in
// SQLite. --workers N runs N worker processes on the same database.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/study_options.h"
#include "common/error.h"
#include "common/stop.h"
#include "search/config.h"
#include "search/frontier.h"
#include "search/runner.h"
#include "study/workers.h"

namespace flashnas::cli {

void add_search_command(CLI::App& app) {
  struct Opts {
    std::string config, algorithm;
    StudyOptions st;
    int workers = 1;
    int64_t seed = -1;
    int64_t parent = 0;  // --worker-child: the parent's pid
    bool child = false, json = false;
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
    if (o->workers < 1) throw InputError("--workers: must be >= 1");
    SearchConfig cfg = SearchConfig::load(o->config);
    if (!o->algorithm.empty() || o->seed >= 0) {
      // Overrides are written into the config stored with the study, so it says what ran.
      json doc = cfg.doc;
      if (!o->algorithm.empty()) doc["search"]["algorithm"] = o->algorithm;
      if (o->seed >= 0) doc["search"]["seed"] = o->seed;
      cfg = SearchConfig::from_json(doc, o->config);
    }
    o->child = o->parent > 0;
    if (o->child) WorkerProcesses::die_with_parent(pid_t(o->parent));
    const SearchOptions so = o->st.apply(o->workers);
    const std::string& db = o->st.db;
    const std::string& study = o->st.study;
    if (!o->child) {
      std::fprintf(stderr, "search: study \"%s\" in %s: %s", study.c_str(), db.c_str(), cfg.describe().c_str());
    }
    // Extra workers: this binary again, one process each.
    std::vector<std::string> args = {"search", "--config", o->config, "--db", db, "--study", study,
                                     "--threads", std::to_string(so.threads)};
    for (const auto& a : o->st.lut_args()) args.push_back(a);
    if (!o->algorithm.empty()) args.insert(args.end(), {"--algorithm", o->algorithm});
    if (o->seed >= 0) args.insert(args.end(), {"--seed", std::to_string(o->seed)});
    if (!o->child && o->workers > 1) create_study_tables(db);
    WorkerProcesses workers(args, o->child ? 0 : o->workers - 1);
    SearchSummary s;
    try {
      s = run_search(cfg, so, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    } catch (const Stopped& e) {
      workers.stop(e.signal());  // each stops at its own safe point; this one waits for them
      throw;
    }
    const int failed_children = workers.wait();
    if (o->child) return;
    if (failed_children > 0) throw Error("search: " + std::to_string(failed_children) + " worker process(es) failed");
    const FrontierReport rep = frontier_report(cfg, db, study);
    if (o->json) {
      json j = rep.to_json();
      j["worker"] = {{"trained", s.trained}, {"failed", s.failed}, {"reused", s.reused}, {"pruned", s.pruned},
                     {"wall_s", s.wall_s}, {"times", s.times.to_json(s.wall_s)}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (!s.stop_reason.empty()) std::printf("search stopped early: %s\n", s.stop_reason.c_str());
    std::printf("this worker's time: %s\n", s.times.describe(s.wall_s).c_str());
    std::printf("%s", rep.summary().c_str());
    std::printf("%s", rep.table().c_str());
  });
}

}  // namespace flashnas::cli
