// `flashnas train`: short-train an architecture on a token file or text.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/device.h"
#include "common/error.h"
#include "common/fault.h"
#include "common/format.h"
#include "common/stop.h"
#include "supernet/arch_spec.h"
#include "train/training_data.h"
#include "train/trainer.h"

namespace flashnas::cli {
namespace fs = std::filesystem;
namespace {

struct TrainOpts {
  std::string arch, data, out, tokenizer;
  TrainRecipe recipe;
  bool no_weight_norm = false, resume = false, json = false, quiet = false;
  int64_t stop_at_step = -1;
};

void print_progress(const Progress& p) {
  char val[32] = "";
  if (std::isfinite(p.val_loss)) std::snprintf(val, sizeof val, "  val %.4f", p.val_loss);
  std::fprintf(stderr, "step %lld/%lld  tokens %s/%s  loss %.4f%s  lr %.2e  %s tok/s  ETA %s\n",
               static_cast<long long>(p.step), static_cast<long long>(p.steps), format_count(double(p.tokens)).c_str(),
               format_count(double(p.total_tokens)).c_str(), p.loss, val, p.lr, format_count(p.tokens_per_s).c_str(),
               format_duration(p.eta_s).c_str());
}

// Everything up to `started = true` is set-up: bad input found there leaves
// nothing behind (the caller removes a run folder it created).
void run_train(const TrainOpts& o, bool& started) {
  TrainRecipe recipe = o.recipe;
  recipe.weight_norm = !o.no_weight_norm;
  recipe.validate();
  parse_device(recipe.device, "--device");
  parse_dtype(recipe.dtype, "--dtype");
  const ArchSpec arch = ArchSpec::load(o.arch);
  const TrainingData data = training_data_from(o.data, o.tokenizer, o.out, o.resume, recipe.val_fraction, recipe.seed);
  const auto& ds = data.dataset;
  const fs::path data_path = data.file->path();
  if (!o.quiet) {
    std::fprintf(stderr, "train: %s (%s) on %s: %s train / %s val tokens; %lld steps of %lld x %lld tokens\n",
                 arch.name.empty() ? o.arch.c_str() : arch.name.c_str(), arch.short_hash().c_str(), data_path.c_str(),
                 format_count(double(ds->train().tokens)).c_str(), format_count(double(ds->val().tokens)).c_str(),
                 static_cast<long long>(recipe.steps()), static_cast<long long>(recipe.batch_size),
                 static_cast<long long>(recipe.seq_len));
  }
  Trainer trainer(arch, ds, data.tokenizer, recipe, o.out);
  trainer.check();
  if (!o.quiet) trainer.on_progress(print_progress);
  Fault fault = Fault::from_env();
  if (fault.n > 0) trainer.on_step([&fault](int64_t) { fault.hit("train-step"); });
  started = true;
  const TrainResult res = trainer.run(o.resume, o.stop_at_step);
  throw_if_stopped("train: stopped after step " + std::to_string(res.steps) + " of " + std::to_string(recipe.steps()) +
                   "; its checkpoint is in " + o.out + ": add --resume to the same command to continue");
  if (o.json) {
    std::cout << res.to_json().dump() << "\n";
    return;
  }
  std::printf("%srun folder: %s\n", res.summary_text().c_str(), o.out.c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
  auto* cmd = app.add_subcommand("train", "Short-train an architecture (AdamW, warmup + cosine or wsd, weight normalization)");
  cmd->add_option("--arch", o->arch, "ArchSpec JSON file")->required();
  cmd->add_option("--data", o->data, "Token file (flashnas data prepare), or a UTF-8 text file or folder")->required();
  cmd->add_option("--tokens", o->recipe.tokens, "Training tokens")->required();
  cmd->add_option("--out", o->out, "Run folder: checkpoint, final model, config.json, curve.csv")->required();
  auto& r = o->recipe;
  cmd->add_option("--batch-size", r.batch_size, "Sequences per step")->capture_default_str();
  cmd->add_option("--seq-len", r.seq_len, "Tokens per sequence")->capture_default_str();
  cmd->add_option("--lr", r.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--schedule", r.schedule, "cosine, or wsd (warmup, constant, linear decay over --decay)")
      ->capture_default_str();
  cmd->add_option("--min-lr-ratio", r.min_lr_ratio, "Final rate as a fraction of --lr")->capture_default_str();
  cmd->add_option("--warmup", r.warmup_fraction, "Warmup as a fraction of the steps")->capture_default_str();
  cmd->add_option("--warmup-tokens", r.warmup_tokens, "Warmup over this many tokens instead (0: use --warmup)")
      ->capture_default_str();
  cmd->add_option("--decay", r.decay_fraction, "wsd: share of the steps in the final decay")->capture_default_str();
  cmd->add_option("--weight-decay", r.weight_decay, "AdamW decay on matrices that are not weight-normalised")
      ->capture_default_str();
  cmd->add_option("--grad-clip", r.grad_clip, "Gradient clipping norm (0: off)")->capture_default_str();
  cmd->add_flag("--no-weight-norm", o->no_weight_norm, "Turn off the paper's weight normalization");
  cmd->add_option("--seed", r.seed, "Seed for init, split and batches")->capture_default_str();
  cmd->add_option("--eval-interval", r.eval_interval, "Steps between evaluations and checkpoints (0: end only)")
      ->capture_default_str();
  cmd->add_option("--eval-batches", r.eval_batches, "Validation batches per evaluation")->capture_default_str();
  cmd->add_option("--val-fraction", r.val_fraction, "Share of documents held out for validation")->capture_default_str();
  cmd->add_option("--device", r.device, "cpu or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", r.dtype, "Parameter dtype: float32 or float64 (bfloat16 lands with the GPU path)")
      ->capture_default_str();
  cmd->add_option("--threads", r.threads, "CPU threads (0: LibTorch default)")->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer, "SentencePiece model for text --data (default: byte-level)");
  cmd->add_flag("--resume", o->resume, "Continue the run in --out from its checkpoint");
  cmd->add_option("--stop-at-step", o->stop_at_step,
                  "Stop after this many steps, leaving a resumable checkpoint (the schedule still spans --tokens)");
  cmd->add_flag("--json", o->json, "Print the final summary as one JSON object on stdout");
  cmd->add_flag("--quiet", o->quiet, "No progress lines");
  cmd->callback([o] {
    const StopSignals stop_on_signals;
    const bool out_existed = fs::exists(o->out);
    bool started = false;
    try {
      run_train(*o, started);
    } catch (...) {
      if (!out_existed && !started) {
        std::error_code ec;
        fs::remove_all(o->out, ec);
      }
      throw;
    }
  });
}

}  // namespace flashnas::cli
