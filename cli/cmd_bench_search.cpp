// `flashnas bench-search`: search algorithms replayed against a bench table,
// many seeds each, side by side (search/replay.h, search/replay_report.h).
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "search/replay_report.h"

namespace flashnas::cli {

void add_bench_search_command(CLI::App& app) {
  struct Opts {
    std::string table, algorithms = "random,evolution,guided,random+asha,evolution+asha,guided+asha", csv, svg;
    std::vector<std::string> set;
    int seeds = 50;
    uint64_t first_seed = 0;
    int64_t budget = 0;
    double eta = 3;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("bench-search", "Replay search algorithms against a bench table, many seeds each");
  cmd->add_option("--table", o->table, "Bench table (flashnas bench-table --csv), with its .json beside it")->required();
  cmd->add_option("--algorithms", o->algorithms, "Comma-separated: random, evolution, guided, each optionally +asha")
      ->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "Seeds per algorithm")->capture_default_str();
  cmd->add_option("--first-seed", o->first_seed, "Seeds are first-seed .. first-seed + seeds - 1")->capture_default_str();
  cmd->add_option("--budget-tokens", o->budget, "Training tokens per search (0: 200 runs at the lowest rung)")
      ->capture_default_str();
  cmd->add_option("--eta", o->eta, "Successive halving's eta for the +asha algorithms")->capture_default_str();
  cmd->add_option("--csv", o->csv, "Write the curves (median and quartiles of the best loss per compute) here");
  cmd->add_option("--svg", o->svg, "Plot the curves here");
  cmd->add_option("--set", o->set, "Override a [search] setting of the table's config, KEY=VALUE (repeatable)");
  cmd->add_flag("--json", o->json, "Print the summary as JSON");
  cmd->callback([o] {
    if (o->seeds < 1) throw InputError("--seeds: must be >= 1, got " + std::to_string(o->seeds));
    if (!(o->eta >= 2)) throw InputError("--eta: must be >= 2");
    if (o->budget < 0) throw InputError("--budget-tokens: must be >= 0");
    if (!o->csv.empty()) check_output_file(o->csv, "--csv");
    if (!o->svg.empty()) check_output_file(o->svg, "--svg");
    ReplayTable t = ReplayTable::load(o->table);
    t.set_search(o->set);
    std::vector<std::string> names;
    std::stringstream ss(o->algorithms);
    for (std::string a; std::getline(ss, a, ',');) names.push_back(a);
    std::vector<std::vector<ReplayRun>> runs;
    for (const auto& a : names) {
      std::vector<ReplayRun> seeds;
      for (int i = 0; i < o->seeds; ++i) {
        ReplayOptions ro;
        ro.algorithm = a;
        ro.seed = o->first_seed + uint64_t(i);
        ro.budget_tokens = o->budget;
        ro.eta = o->eta;
        seeds.push_back(replay(t, ro));
      }
      runs.push_back(std::move(seeds));
    }
    std::vector<std::string> budgets;
    for (const auto& b : t.cfg.budgets) budgets.push_back(b.name);
    const ReplaySummary s = summarize_replays(runs, budgets);
    if (!o->csv.empty()) write_file_atomic(o->csv, s.csv());
    if (!o->svg.empty()) write_file_atomic(o->svg, s.svg());
    if (o->json) {
      json j = s.to_json();
      j["table"] = o->table;
      j["rows"] = t.genomes.size();
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("replays against %s (%zu architectures, rungs", o->table.c_str(), t.genomes.size());
    for (const int64_t k : t.table.rungs) std::printf(" %lld", static_cast<long long>(k));
    std::printf(" tokens)\n%s", s.text().c_str());
  });
}

}  // namespace flashnas::cli
