// `flashnas train`: short-train an architecture on a token file or text.
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/format.h"
#include "common/stop.h"
#include "train/train_run.h"

namespace flashnas::cli {
namespace {

struct TrainOpts {
  TrainRunRequest req;
  bool no_weight_norm = false, json = false, quiet = false;
};

void print_progress(const Progress& p) {
  char val[32] = "";
  if (std::isfinite(p.val_loss)) std::snprintf(val, sizeof val, "  val %.4f", p.val_loss);
  std::fprintf(stderr, "step %lld/%lld  tokens %s/%s  loss %.4f%s  lr %.2e  %s tok/s  ETA %s\n",
               static_cast<long long>(p.step), static_cast<long long>(p.steps), format_count(double(p.tokens)).c_str(),
               format_count(double(p.total_tokens)).c_str(), p.loss, val, p.lr, format_count(p.tokens_per_s).c_str(),
               format_duration(p.eta_s).c_str());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOpts>();
  auto* cmd = app.add_subcommand("train", "Short-train an architecture (AdamW, warmup + cosine or wsd, weight normalization)");
  cmd->add_option("--arch", o->req.arch, "ArchSpec JSON file")->required();
  cmd->add_option("--data", o->req.data, "Token file (flashnas data prepare), or a UTF-8 text file or folder")->required();
  cmd->add_option("--tokens", o->req.recipe.tokens, "Training tokens")->required();
  cmd->add_option("--out", o->req.out, "Run folder: checkpoint, final model, config.json, curve.csv")->required();
  auto& r = o->req.recipe;
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
  cmd->add_option("--split-seed", o->req.split_seed,
                  "Seed of the train/validation split only (default: --seed); fixed, seeds compare on the same held-out "
                  "documents");
  cmd->add_option("--eval-interval", r.eval_interval, "Steps between evaluations and checkpoints (0: end only)")
      ->capture_default_str();
  cmd->add_option("--eval-batches", r.eval_batches, "Validation batches per evaluation")->capture_default_str();
  cmd->add_option("--val-fraction", r.val_fraction, "Share of documents held out for validation")->capture_default_str();
  cmd->add_option("--device", r.device, "cpu or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", r.dtype, "Parameter dtype: float32 or float64 (bfloat16 lands with the GPU path)")
      ->capture_default_str();
  cmd->add_option("--threads", r.threads, "CPU threads (0: LibTorch default)")->capture_default_str();
  cmd->add_option("--tokenizer", o->req.tokenizer, "SentencePiece model for text --data (default: byte-level)");
  cmd->add_flag("--resume", o->req.resume, "Continue the run in --out from its checkpoint");
  cmd->add_option("--stop-at-step", o->req.stop_at_step,
                  "Stop after this many steps, leaving a resumable checkpoint (the schedule still spans --tokens)");
  cmd->add_flag("--json", o->json, "Print the final summary as one JSON object on stdout");
  cmd->add_flag("--quiet", o->quiet, "No progress lines");
  cmd->callback([o] {
    const StopSignals stop_on_signals;
    TrainRunRequest req = o->req;
    req.recipe.weight_norm = !o->no_weight_norm;
    const TrainResult res = train_run(
        req, [o](const std::string& line) { if (!o->quiet) std::fprintf(stderr, "%s\n", line.c_str()); },
        o->quiet ? std::function<void(const Progress&)>() : print_progress);
    if (o->json) {
      std::cout << res.to_json().dump() << "\n";
      return;
    }
    std::printf("%srun folder: %s\n", res.summary_text().c_str(), req.out.c_str());
  });
}

}  // namespace flashnas::cli
