// `flashnas search`: run (or resume) a study: aging evolution or random
// search against latency budgets, candidates short-trained, every trial in
// SQLite. --workers N runs N worker processes on the same database.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "common/error.h"
#include "search/config.h"
#include "search/frontier.h"
#include "search/runner.h"

extern char** environ;

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
      std::fprintf(stderr, "search: study \"%s\" in %s: %s %s, %d trials, population %d, sample %d, %d offspring/cycle\n",
                   o->study.c_str(), o->db.c_str(), cfg.search.algorithm.c_str(), cfg.search.objective.c_str(),
                   cfg.search.trials, cfg.search.population, cfg.search.sample, cfg.search.offspring);
      if (!cfg.search.fidelities.empty()) {
        std::string rungs;
        for (const int64_t t : cfg.search.fidelities) rungs += (rungs.empty() ? "" : ", ") + std::to_string(t);
        char how[64];
        if (cfg.search.promote_all) std::snprintf(how, sizeof how, "every candidate to every rung");
        else std::snprintf(how, sizeof how, "promote the top 1/%g of a rung", cfg.search.eta);
        std::fprintf(stderr, "  rungs [%s] tokens, %s, token budget %lld\n", rungs.c_str(), how,
                     static_cast<long long>(cfg.search.token_budget));
      }
      for (const auto& b : cfg.budgets) std::fprintf(stderr, "  budget %s\n", b.describe().c_str());
    }
    // Extra workers: this binary again, one process each.
    std::vector<pid_t> children;
    if (!o->child && o->workers > 1) {
      char exe[4096];
      const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
      if (n <= 0) throw Error("search: cannot find this executable to start workers");
      exe[n] = 0;
      std::vector<std::string> args = {exe,      "search",   "--config", o->config, "--db", o->db,
                                       "--study", o->study, "--threads", std::to_string(so.threads), "--worker-child"};
      if (!o->lut.empty()) args.insert(args.end(), {"--lut", o->lut});
      if (!o->algorithm.empty()) args.insert(args.end(), {"--algorithm", o->algorithm});
      if (o->seed >= 0) args.insert(args.end(), {"--seed", std::to_string(o->seed)});
      if (!o->lut_device.empty()) args.insert(args.end(), {"--lut-device", o->lut_device});
      if (o->accept_unreliable) args.push_back("--accept-unreliable-lut");
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      // The study row must exist before the workers race to create it.
      { StudyStore(o->db, true); }
      for (int i = 1; i < o->workers; ++i) {
        pid_t pid = 0;
        if (posix_spawn(&pid, exe, nullptr, nullptr, argv.data(), environ) != 0) throw Error("search: cannot start a worker");
        children.push_back(pid);
      }
    }
    const SearchSummary s = run_search(cfg, so, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
    int failed_children = 0;
    for (pid_t pid : children) {
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed_children;
    }
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
