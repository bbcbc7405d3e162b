// `flashnas compare`: the study's pick against hand-designed baselines of the
// same budget, retrained under one recipe and measured here (compare/compare.h).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/study_options.h"
#include "common/error.h"
#include "common/files.h"
#include "common/stop.h"
#include "compare/compare.h"

namespace flashnas::cli {

void add_compare_command(CLI::App& app) {
  struct Opts {
    CompareOptions c;
    std::string db, lut, artifacts, svg, json_out;
    std::vector<std::string> baselines;
    std::vector<double> aspect;
    double lr = 0;
    bool no_measure = false, no_reuse = false, report = false, plan = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "compare", "Retrain the study's picks and hand-designed baselines of the same budgets under one recipe, measure "
                 "them here, and say whether the pick wins (table, JSON, SVG)");
  cmd->add_option("--db", o->db, "Study database: a SQLite file, or postgresql://user@host:port/dbname")->required();
  cmd->add_option("--study", o->c.study, "Study name")->required();
  cmd->add_option("--name", o->c.name, "The comparison's name (a study may hold several)")->capture_default_str();
  cmd->add_option("--lut", o->lut, "LUT database, when not in --db");
  cmd->add_option("--artifacts", o->artifacts, "Run folders (default: DB.runs; required with a PostgreSQL --db)");
  cmd->add_option("--budget", o->c.budgets, "Compare at this budget only (repeatable; default: every budget)");
  cmd->add_option("--baseline", o->baselines, "An ArchSpec JSON file to add as a contender (repeatable)");
  cmd->add_option("--rival-study", o->c.rival_studies,
                  "Another study in --db whose best trial joins as a contender, e.g. a random search (repeatable)");
  cmd->add_option("--contender", o->c.only,
                  "Compare only this contender beside pick-best, by its label (e.g. mamba2-only; repeatable): for "
                  "retraining the closest ones longer; the verdict then covers these alone and says so");
  cmd->add_option("--tokens", o->c.tokens, "Training tokens per run (default: 16x the study's top rung)");
  cmd->add_option("--seeds", o->c.seeds, "Seeds per contender (initialisation)")->capture_default_str();
  auto* lr = cmd->add_option("--lr", o->lr, "One learning rate for every contender (default: pick from --lr-grid)");
  cmd->add_option("--lr-grid", o->c.lr_grid, "Learning rates to pick from per contender by a short run (default: the "
                                             "study's rate x 1/3, 1, 3)")
      ->delimiter(',')
      ->excludes(lr);
  cmd->add_option("--lr-tokens", o->c.lr_tokens, "Tokens of each grid run (default: the study's top rung)");
  cmd->add_option("--lr-extend", o->c.lr_extend,
                  "When the best rate is the grid's highest or lowest, try one more beyond it, up to this many times "
                  "each way")
      ->capture_default_str();
  cmd->add_option("--schedule", o->c.schedule, "cosine or wsd")->capture_default_str();
  cmd->add_option("--eval-batches", o->c.eval_batches, "Held-out batches per evaluation")->capture_default_str();
  cmd->add_option("--aspect", o->aspect,
                  "The standard band of d_model per mixer layer for sizing baselines, MIN,MAX (default 32,128)")
      ->delimiter(',')
      ->expected(2);
  cmd->add_option("--near", o->c.sizing.near_fraction,
                  "Baselines use the budget: sizes predicted at least this share of their family's slowest size "
                  "within the budget")
      ->capture_default_str();
  cmd->add_option("--rounds", o->c.rounds, "Interleaved measurement rounds")->capture_default_str();
  cmd->add_option("--min-seconds", o->c.min_seconds, "Timed seconds per contender per round (and at least 5 runs)")
      ->capture_default_str();
  cmd->add_flag("--no-measure", o->no_measure, "Train only; the report uses predicted latency and says so");
  cmd->add_flag("--measure-anywhere", o->c.any_device,
                "Measure on this machine even though it is not the latency table's device");
  cmd->add_flag("--worker", o->c.train_only,
                "Only train what is waiting (another process measures and reports); for extra processes and machines");
  cmd->add_flag("--no-reuse", o->no_reuse,
                 "Train every run, even one that another comparison on the same data already made with the same recipe");
  cmd->add_option("--threads", o->c.threads, "Training threads (default: the study's)")->capture_default_str();
  add_lease_options(*cmd, o->c.lease_s, o->c.db_retry_s);
  cmd->add_flag("--report", o->report, "Print the stored comparison (no training, no measuring)");
  cmd->add_flag("--plan", o->plan, "Print the contenders each budget would get, and stop (writes nothing)");
  cmd->add_option("--svg", o->svg, "Write the plot (latency against retrained loss per budget) to this SVG file");
  cmd->add_option("--json-out", o->json_out, "Write the report as JSON to this file");
  cmd->add_flag("--json", o->json, "Print JSON instead of the table");
  cmd->callback([o, lr] {
    if (!o->svg.empty()) check_output_file(o->svg, "--svg");
    if (!o->json_out.empty()) check_output_file(o->json_out, "--json-out");
    CompareOptions c = o->c;
    c.db = o->db;
    c.lut_db = o->lut;
    c.artifacts = o->artifacts;
    for (const auto& b : o->baselines) c.baselines.emplace_back(b);
    if (lr->count() > 0) c.lr = o->lr;
    if (!o->aspect.empty()) {
      c.sizing.aspect_min = o->aspect[0];
      c.sizing.aspect_max = o->aspect[1];
    }
    c.measure = !o->no_measure;
    c.reuse = !o->no_reuse;
    auto log = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    if (o->plan) {
      std::printf("%s", plan_compare(c, log).text().c_str());
      return;
    }
    CompareReport rep;
    if (o->report) {
      rep = compare_report(o->db, o->c.study, o->c.name);
    } else {
      const StopSignals stop_on_signals;
      rep = run_compare(c, log);
    }
    if (!o->svg.empty()) write_file_atomic(o->svg, rep.svg());
    if (!o->json_out.empty()) write_file_atomic(o->json_out, rep.to_json().dump(2) + "\n");
    if (o->json) {
      std::cout << rep.to_json().dump(2) << "\n";
      return;
    }
    std::printf("%s", rep.table().c_str());
    if (!o->svg.empty()) std::printf("\nplot: %s\n", o->svg.c_str());
  });
}

}  // namespace flashnas::cli
