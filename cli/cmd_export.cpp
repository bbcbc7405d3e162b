// `flashnas export`: a trial of a study as a model folder.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "common/stop.h"
#include "common/error.h"
#include "common/threads.h"
#include "export/export.h"
#include "export/hf_export.h"
#include "train/checkpoint.h"

namespace flashnas::cli {

void add_export_command(CLI::App& app) {
  struct Opts {
    ExportOptions e;
    std::string db, lut, out, model;
    bool json = false, no_measure = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("export", "Write a trial (or a trained model folder) as a model folder that flashnas and "
                                           "Hugging Face transformers load (safetensors, config, latency report, card)");
  auto* db = cmd->add_option("--db", o->db, "Study database: a SQLite file, or postgresql://user@host:port/dbname");
  auto* study = cmd->add_option("--study", o->e.study, "Study name");
  auto* model = cmd->add_option("--model", o->model, "Instead of a study: a model folder (flashnas train's run folder, "
                                                     "or an export) to copy with the transformers files added");
  db->excludes(model);
  study->excludes(model);
  cmd->add_option("--trial", o->e.trial, "Trial number (default: the study's best)")->excludes(model);
  cmd->add_option("--out", o->out, "Folder to create")->required();
  cmd->add_option("--lut", o->lut, "LUT database, when not in --db")->excludes(model);
  cmd->add_option("--artifacts", o->e.artifacts, "The study's run folders (default: DB.runs; required with a PostgreSQL --db)")
      ->excludes(model);
  cmd->add_option("--train-tokens", o->e.train_tokens,
                  "Train the architecture again for this many tokens first (0: keep the trial's weights)")
      ->capture_default_str()
      ->excludes(model);
  cmd->add_option("--threads", o->e.threads, "Training threads (0: LibTorch default)")->capture_default_str();
  cmd->add_flag("--no-measure", o->no_measure, "Do not bench the budgets' workloads");
  cmd->add_flag("--json", o->json, "Print latency.json");
  cmd->callback([o] {
    const StopSignals stop_on_signals;  // Ctrl-C while training (--train-tokens) publishes nothing
    if (!o->model.empty()) {
      export_model_folder(o->model, o->out);
      std::printf("exported to %s\n", o->out.c_str());
      return;
    }
    if (o->db.empty() || o->e.study.empty()) throw InputError("export: give --db and --study (a study's trial), or --model DIR");
    o->e.db = o->db;
    o->e.lut_db = o->lut;
    o->e.out = o->out;
    o->e.measure = !o->no_measure;
    const ExportResult r = export_trial(o->e, [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); });
    if (o->json) {
      std::cout << r.latency_json().dump(2) << "\n";
      return;
    }
    std::fputs(r.text().c_str(), stdout);
  });
}

}  // namespace flashnas::cli
