#include "export/export.h"

#include <unistd.h>

#include <cstdio>
#include <limits>

#include "common/device.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/stop.h"
#include "common/files.h"
#include "common/format.h"
#include "common/version.h"
#include "common/threads.h"
#include "profiler/measure.h"
#include "profiler/judge.h"
#include "profiler/predict.h"
#include "profiler/probe.h"
#include "search/frontier.h"
#include "export/hf_export.h"
#include "search/runner.h"
#include "supernet/accounting.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"
#include "train/token_file.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {

using Log = std::function<void(const std::string&)>;

// The trial to export: --trial, or the study's best; trained ones only.
const TrialRow* pick_trial(const ExportOptions& o, const FrontierReport& rep) {
  const TrialRow* t = nullptr;
  if (!o.trial) {
    t = rep.best();
    if (!t) throw InputError(o.db.string() + ": study \"" + o.study + "\" has no trained trial to export yet");
  } else {
    t = rep.by_number(*o.trial);
    if (!t) throw InputError("--trial: study \"" + o.study + "\" has no trial " + std::to_string(*o.trial));
    if (t->status != "done") {
      throw InputError("--trial: trial " + std::to_string(*o.trial) + " is " + t->status +
                       (t->reason.empty() ? "" : " (" + t->reason + ")") + "; only trained trials can be exported");
    }
  }
  return t;
}

// The weights into `tmp`: the trial trained again for --train-tokens, or the
// trial's own run folder copied.
void export_weights(const ExportOptions& o, const SearchConfig& cfg, const TrialRow& t, const ArchSpec& arch,
                    const fs::path& tmp, const Log& log) {
  const int64_t source_trial = t.reused_from ? *t.reused_from : t.number;
  if (o.train_tokens > 0) {
    TrainRecipe r = cfg.recipe;
    r.tokens = o.train_tokens;
    if (o.threads > 0) r.threads = o.threads;
    std::error_code ec;
    if (fs::path(cfg.data).is_relative() && !fs::exists(cfg.data, ec)) {
      throw InputError("--train-tokens: the study's train.data \"" + fs::path(cfg.data).string() + "\" is a relative path and is not in " +
                       fs::current_path(ec).string() + "; it is read from the working directory, so run export from "
                       "the folder the search ran in");
    }
    const TrainingData data = open_training_data(cfg.data, r.val_fraction, r.seed, "study \"" + o.study + "\" train.data");
    const auto& tok = data.tokenizer;
    const auto& ds = data.dataset;
    log("export: training trial " + std::to_string(t.number) + " for " + std::to_string(o.train_tokens) + " tokens");
    Trainer trainer(arch, ds, tok, r, tmp);
    trainer.on_progress([&](const Progress& p) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "export: step %lld/%lld loss %.4f, ETA %.0f s", static_cast<long long>(p.step),
                    static_cast<long long>(p.steps), p.loss, p.eta_s);
      log(buf);
    });
    Fault fault = Fault::from_env();  // test-only (common/fault.h)
    if (fault.n > 0) trainer.on_step([&fault](int64_t) { fault.hit("train-step"); });
    trainer.run(false);
    // A stop request ends the training early: nothing half-trained is published.
    throw_if_stopped("export: stopped while training trial " + std::to_string(t.number) + "; nothing was written to " +
                     o.out.string() + "; run the same command again");
    fs::remove_all(tmp / "checkpoint");
  } else {
    const fs::path src = trial_dir(artifacts_root(o.db.string(), o.artifacts), o.study, source_trial);
    if (!fs::exists(src / "model.safetensors")) {
      throw InputError(src.string() + ": the trial's weights are gone; export with --train-tokens N to train it again");
    }
    for (const auto& e : fs::directory_iterator(src)) {
      if (!e.is_regular_file()) continue;
      std::error_code ec;
      fs::copy_file(e.path(), tmp / e.path().filename(), ec);
      if (ec) throw IoError((tmp / e.path().filename()).string() + ": cannot write the trial's " + e.path().filename().string() + " (" + ec.message() + ")");
    }
  }
}

// Task data: the exported model's task metrics on every held-out record
// (the trial's own, from fewer records, when the data is not here), written
// to tmp/task.json; null for plain text.
json export_task(const ExportOptions& o, const SearchConfig& cfg, const TrialRow& t, const fs::path& tmp, const Log& log) {
  json task = nullptr;
  std::error_code ec;
  if (fs::exists(cfg.data, ec) && is_token_file(cfg.data) && TokenFile(cfg.data).has_completion_mask()) {
    const TrainingData data = open_training_data(cfg.data, cfg.recipe.val_fraction, cfg.recipe.seed,
                                                 "study \"" + o.study + "\" train.data");
    log("export: task metrics on the " + std::to_string(data.dataset->val_docs().size()) + " held-out records of " +
        cfg.data.string());
    const LoadedModel lm = load_model_dir(tmp);
    const TaskEvalResult te =
        evaluate_task(lm.model, *data.tokenizer, task_records(*data.file, data.dataset->val_docs()), TaskEvalOptions{});
    log("export: " + te.summary());
    task = te.to_json();
    task["records_evaluated"] = "held-out records (validation split) of " + cfg.data.string();
  } else if (!t.task.is_null()) {
    task = t.task;
    task["records_evaluated"] = "from the search: the trial's first held-out records (" + cfg.data.string() + " is not here)";
  }
  if (!task.is_null()) write_file_atomic(tmp / "task.json", task.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  return task;
}

// Latency per budget: predicted from the LUT, measured here when this is the
// LUT's device; written to tmp/latency.json.
ExportResult export_latency(const ExportOptions& o, const SearchConfig& cfg, const StudyRow& study, const ArchSpec& arch,
                            const fs::path& tmp, const Log& log) {
  const fs::path lut_db = o.lut_db.empty() ? o.db : o.lut_db;
  LutStore lut(lut_db, Access::read_only);
  const int64_t device = study.lut_device;
  ExportResult r;
  r.lut_device = lut.device_info(device);
  const int threads = r.lut_device.value("threads", 0);
  if (threads > 0) at::set_num_threads(threads);
  const MeasureOptions m = measure_options(parse_device(r.lut_device.value("device", "cpu"), "LUT device"),
                                           parse_dtype(cfg.dtype, "latency.dtype"), cfg.runtime);
  const DeviceInfo here = describe_device(m.device);
  const bool same = here.fingerprint() == r.lut_device.at("fingerprint").get<std::string>();
  const LutTable table = LutTable::load(lut, device, cfg.dtype, cfg.runtime);
  for (const auto& b : cfg.budgets) {
    const Prediction p = predict(arch, b.workload, table);
    BudgetLatency row;
    row.budget = b;
    row.predicted_ms = p.total_ms;
    row.meets_budget = b.met(p.total_ms);
    if (o.measure && same) {
      log("export: measuring " + b.workload.str());
      MachineProbe probe(m.device, probe_memory_bytes(read_cpu_caches()));
      const ProbeReading before = probe.read();
      const BenchResult br = bench_rounds(arch, b.workload, m, 3);
      const ProbeReading now = mean_reading(before, probe.read());
      row.measured_ms = br.total.median_us / 1e3;
      row.measured_p10_ms = br.total.p10_us / 1e3;
      row.measured_p90_ms = br.total.p90_us / 1e3;
      row.judgement = judge(p.total_ms, *row.measured_ms, table, b.workload, now);
      if (row.judgement->beyond) log("export: " + b.name + ": " + row.judgement->note);
    } else {
      row.why_not_measured = o.measure ? "this machine (" + here.fingerprint() + ") is not the LUT's device" : "--no-measure";
    }
    r.budgets.push_back(row);
  }
  r.dtype = cfg.dtype;
  r.runtime = cfg.runtime;
  r.table_verdict = table.report.is_null() ? "unvalidated" : table.report["verdict"]["status"].get<std::string>();
  r.measured_by.assign(table.commits.begin(), table.commits.end());
  r.this_build = git_commit();
  write_file_atomic(tmp / "latency.json", r.latency_json().dump(2) + "\n");
  return r;
}

// The model card (README.md of the export folder).
std::string model_card(const TrialRow& t, const ArchSpec& arch, const json& task, const ExportResult& latency,
                       const std::string& study, const fs::path& tmp) {
  const json mc = load_json_file(tmp / "config.json");
  const ModelAccount acc = account(arch, 0, 4);
  std::string card = "# " + t.genome + "\n\n";
  card += "Exported by flashnas " + version_string() + " (commit " + git_commit() + ") from study `" + study +
          "`, trial " + std::to_string(t.number) + ".\n\n";
  card += "- Architecture hash: `" + arch.hash() + "`\n";
  card += "- Parameters: " + std::to_string(acc.params_total) + "; d_model " + std::to_string(arch.d_model) + ", " +
          std::to_string(arch.layers.size()) + " sublayers, vocabulary " + std::to_string(arch.vocab_size) + "\n";
  card += "- Layers:";
  for (const auto& l : arch.layers) card += " " + l.type;
  card += "\n";
  if (mc.contains("result")) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "- Training: %lld tokens; validation loss %.4f nats/token, %.4f bits/byte\n",
                  static_cast<long long>(mc["result"].value("tokens", int64_t(0))), mc["result"].value("val_loss", 0.0),
                  mc["result"].value("val_bpb", 0.0));
    card += buf;
  }
  if (!task.is_null()) {
    auto pct = [&](const char* k) { return format_rate(task[k].is_number() ? task[k].get<double>() : NAN); };
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\n## Task metrics\n\nOn %lld %s: completion loss %.4f nats/token, %.4f bits per completion byte; "
                  "greedy completions: exact match %s of %lld; of %lld JSON references, valid JSON %s, equal after parsing %s "
                  "(`task.json`).\n",
                  static_cast<long long>(task.value("records", int64_t(0))), task.value("records_evaluated", std::string()).c_str(),
                  task.value("completion_loss", 0.0), task.value("completion_bpb", 0.0), pct("exact_rate").c_str(),
                  static_cast<long long>(task.value("generated", int64_t(0))), static_cast<long long>(task.value("json_records", int64_t(0))),
                  pct("json_valid_rate").c_str(), pct("json_equal_rate").c_str());
    card += buf;
  }
  card += "\n## Latency (" + latency.lut_device.at("fingerprint").get<std::string>() +
          ")\n\n| budget | workload | limit ms | predicted ms | measured ms |\n|---|---|---|---|---|\n";
  for (const auto& row : latency.budgets) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "| %s | %s | %.2f | %.2f | %s |\n", row.budget.name.c_str(), row.budget.workload.str().c_str(),
                  row.budget.limit_ms(), row.predicted_ms, row.measured_ms ? std::to_string(*row.measured_ms).c_str() : "-");
    card += buf;
  }
  card += "\n## Files\n\n- `model.safetensors`: parameters named as in flashnas' HybridLM (`embed_tokens.weight`, "
          "`layers.<i>.norm.weight`, `layers.<i>.<type>.*`, `norm.weight`, `lm_head.weight` unless tied).\n"
          "- `config.json`: the ArchSpec (`arch`), tokenizer, dtype and training recipe.\n"
          "- `latency.json`: predicted and measured latency per budget.\n"
          "- `task.json` (task data only): completion loss, exact-match and JSON rates on held-out records.\n";
  card += "- `configuration_flashnas.py`, `modeling_flashnas.py`, `generation_config.json` (and for the byte-level "
          "tokenizer `tokenizer.json`, `tokenizer_config.json`): the model for Hugging Face transformers.\n\n"
          "Decode with: `flashnas generate --model <this folder> --prompt \"...\"`, or in Python:\n\n"
          "    from transformers import AutoModelForCausalLM, AutoTokenizer\n"
          "    model = AutoModelForCausalLM.from_pretrained(\"<this folder>\", trust_remote_code=True)\n"
          "    tok = AutoTokenizer.from_pretrained(\"<this folder>\", trust_remote_code=True)\n";
  return card;
}

}  // namespace

ExportResult export_trial(const ExportOptions& o, const std::function<void(const std::string&)>& log) {
  if (fs::exists(o.out)) throw InputError("--out: " + o.out.string() + " already exists; choose a new folder");
  if (o.trial && *o.trial < 0) throw InputError("--trial: must be a trial number >= 0, got " + std::to_string(*o.trial));
  if (o.train_tokens < 0) throw InputError("--train-tokens: must be >= 0 (0 keeps the trial's weights)");
  checked_threads(o.threads, "--threads");
  const FrontierReport rep = frontier_report(o.db, o.study);
  const TrialRow* t = pick_trial(o, rep);
  const ArchSpec arch = ArchSpec::from_json(parse_json(t->arch, "trial " + std::to_string(t->number) + ", column arch"), "trial " + std::to_string(t->number));
  // The study's record (its config and the LUT device it priced with), read with its trials.
  const StudyRow& study = rep.record;
  const SearchConfig cfg = SearchConfig::from_json(study.config, "study \"" + o.study + "\" config");

  const fs::path tmp = make_work_dir(o.out);
  try {
    export_weights(o, cfg, *t, arch, tmp, log);
    const json task = export_task(o, cfg, *t, tmp, log);
    ExportResult result = export_latency(o, cfg, study, arch, tmp, log);
    result.folder = o.out;
    result.trial = t->number;
    write_file_atomic(tmp / "README.md", model_card(*t, arch, task, result, o.study, tmp));
    write_hf_files(tmp);
    publish_work_dir(tmp, o.out);
    return result;
  } catch (const IoError& e) {
    // A full or failing disk: the message names the file; nothing is published.
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw IoError(std::string(e.what()) + "; the export to " + o.out.string() + " stopped and nothing of it was kept");
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

double BudgetLatency::error() const {
  return measured_ms ? (predicted_ms - *measured_ms) / *measured_ms : std::numeric_limits<double>::quiet_NaN();
}

json BudgetLatency::to_json() const {
  json row = {{"budget", budget.to_json()}, {"predicted_ms", predicted_ms}, {"meets_budget", meets_budget}};
  if (measured_ms) {
    row["measured_ms"] = *measured_ms;
    row["measured_p10_ms"] = measured_p10_ms.value_or(*measured_ms);
    row["measured_p90_ms"] = measured_p90_ms.value_or(*measured_ms);
    row["error"] = error();
    if (judgement) row["judgement"] = judgement->to_json();
  } else {
    row["measured_ms"] = nullptr;
    row["why_not_measured"] = why_not_measured;
  }
  return row;
}

json ExportResult::latency_json() const {
  json rows = json::array();
  for (const auto& b : budgets) rows.push_back(b.to_json());
  return {{"lut_device", lut_device},
          {"dtype", dtype},
          {"runtime", runtime},
          {"table", {{"verdict", table_verdict}, {"measured_by", measured_by}, {"this_build", this_build}}},
          {"budgets", rows}};
}

std::string ExportResult::text() const {
  auto padded = [](std::string x, size_t width) { return x.size() < width ? x.append(width - x.size(), ' ') : x; };
  std::string s;
  for (const auto& b : budgets) {
    char buf[128];
    std::snprintf(buf, sizeof buf, " predicted %8.2f ms", b.predicted_ms);
    s += padded(b.budget.name, 14) + " " + padded(b.budget.workload.str(), 34) + buf;
    if (b.measured_ms) {
      std::snprintf(buf, sizeof buf, "  measured %8.2f ms  (%+.1f%%)", *b.measured_ms, 100 * b.error());
      s += buf;
    }
    s += "\n";
  }
  return s + "exported to " + folder.string() + "\n";
}

}  // namespace flashnas
