// `flashnas search`: run (or resume) a study: aging evolution or random
// search against latency budgets, candidates short-trained, every trial in
// SQLite. --workers N runs N worker processes on the same database.
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "common/error.h"
#include "search/config.h"
#include "search/frontier.h"
#include "search/runner.h"
#include "search/workers.h"

namespace flashnas::cli {

void add_search_command(CLI::App& app) {
  struct Opts {
    std::string config, db, lut, study, lut_device, algorithm;
    int workers = 1, threads = 0;
    int64_t seed = -1;
    bool child = false, json = false, accept_unreliable = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("search", "Search architectures against latency budgets (resumable study in SQLite)");
  cmd->add_option("--config", o->config, "Search config (TOML): space, budgets, training, search settings")->required();
  cmd->add_option("--db", o->db, "SQLite database for the study (and, by default, the LUT)")->required();
  cmd->add_option("--study", o->study, "Study name; rerunning with the same name resumes it")->required();
  cmd->add_option("--lut", o->lut, "LUT database, when not in --db");
  cmd->add_option("--lut-device", o->lut_device, "LUT device fingerprint, when the LUT holds several");
  cmd->add_option("--algorithm", o->algorithm,
                  "Override [search].algorithm: evolution or random (e.g. a random-search baseline study from the same "
                  "config)");
  cmd->add_option("--seed", o->seed, "Override [search].seed (e.g. repeats of a study with other seeds)");
  cmd->add_option("--workers", o->workers, "Worker processes sharing the study")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Training threads per worker (0: cores / workers)")->capture_default_str();
  cmd->add_flag("--accept-unreliable-lut", o->accept_unreliable,
                "Search with a latency table whose verdict is unreliable or that was never validated (the study "
                "records it)");
  cmd->add_flag("--json", o->json, "Print the final summary as JSON");
  cmd->add_flag("--worker-child", o->child, "Internal: run as one of --workers' extra processes")->group("");
  cmd->callback([o] {
    if (o->workers < 1) throw InputError("--workers: must be >= 1");
    if (o->threads < 0) throw InputError("--threads: must be >= 0");
    SearchConfig cfg = SearchConfig::load(o->config);
    if (!o->algorithm.empty() || o->seed >= 0) {
      // Overrides are written into the config stored with the study, so it says what ran.
      json doc = cfg.doc;
      if (!o->algorithm.empty()) doc["search"]["algorithm"] = o->algorithm;
      if (o->seed >= 0) doc["search"]["seed"] = o->seed;
      cfg = SearchConfig::from_json(doc, o->config);
    }
    SearchOptions so;
    so.db = o->db;
    so.lut_db = o->lut;
    so.study = o->study;
    so.lut_device = o->lut_device;
    so.accept_unreliable_lut = o->accept_unreliable;
    so.threads = o->threads > 0 ? o->threads
                                : std::max(1, int(std::thread::hardware_concurrency()) / std::max(1, o->workers));
    if (!o->child) {
      std::fprintf(stderr, "search: study \"%s\" in %s: %s", o->study.c_str(), o->db.c_str(), cfg.describe().c_str());
    }
    // Extra workers: this binary again, one process each.
    std::vector<std::string> args = {"search", "--config", o->config, "--db", o->db, "--study", o->study,
                                     "--threads", std::to_string(so.threads), "--worker-child"};
    if (!o->lut.empty()) args.insert(args.end(), {"--lut", o->lut});
    if (!o->algorithm.empty()) args.insert(args.end(), {"--algorithm", o->algorithm});
    if (o->seed >= 0) args.insert(args.end(), {"--seed", std::to_string(o->seed)});
    if (!o->lut_device.empty()) args.insert(args.end(), {"--lut-device", o->lut_device});
    if (o->accept_unreliable) args.push_back("--accept-unreliable-lut");
    if (!o->child && o->workers > 1) StudyStore(o->db, true);  // the tables exist before the workers race to create them
    WorkerProcesses workers(args, o->child ? 0 : o->workers - 1);
    const SearchSummary s = run_search(cfg, so, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    const int failed_children = workers.wait();
    if (o->child) return;
    if (failed_children > 0) throw Error("search: " + std::to_string(failed_children) + " worker process(es) failed");
    const FrontierReport rep = frontier_report(cfg, o->db, o->study);
    if (o->json) {
      json j = rep.to_json();
      j["worker"] = {{"trained", s.trained}, {"failed", s.failed}, {"reused", s.reused}, {"pruned", s.pruned},
                     {"wall_s", s.wall_s}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    if (!s.stop_reason.empty()) std::printf("search stopped early: %s\n", s.stop_reason.c_str());
    std::printf("%s", rep.summary().c_str());
    std::printf("%s", rep.table().c_str());
  });
}

}  // namespace flashnas::cli
