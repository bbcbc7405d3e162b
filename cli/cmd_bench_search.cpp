// `flashnas bench-search`: search algorithms replayed against a bench table,
// many seeds each, side by side (search/replay.h, report/replay_report.h).
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "common/format.h"
#include "report/replay_report.h"

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
    check_replay_algorithms(names);  // before hours of replays, not after
    ReplayOptions common;
    common.budget_tokens = o->budget;
    common.eta = o->eta;
    const auto start = std::chrono::steady_clock::now();
    double last = -1e9;  // a progress line every 2 s at most, and the last one
    const auto runs = replay_all(t, names, o->seeds, o->first_seed, common,
                                 [&](int64_t done, int64_t total, const ReplayRun& r) {
                                   const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                                   if (done < total && s - last < 2) return;
                                   last = s;
                                   std::fprintf(stderr, "bench-search: [%lld/%lld replays] %s seed %llu: best %.4f; %s elapsed, ETA %s\n",
                                                static_cast<long long>(done), static_cast<long long>(total), r.algorithm.c_str(),
                                                static_cast<unsigned long long>(r.seed), r.final_best, format_duration(s).c_str(),
                                                format_duration(s / double(done) * double(total - done)).c_str());
                                 });
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
