// The short-training loop: the inner loop of the search, and `flashnas train`.
//
// One run: build HybridLM from the ArchSpec (seeded), AdamW with linear warmup
// then cosine, gradient clipping, the paper's weight normalization after every
// step (unless turned off), evaluation on fixed validation batches (loss,
// perplexity, bits per byte), a crash-safe checkpoint at every evaluation, and
// the curve. Deterministic on CPU for a fixed seed and thread count: batches
// are a pure function of (seed, step), so a resumed run reproduces the
// uninterrupted one exactly.
//
// Run folder (out_dir):
//   checkpoint/{model.safetensors, optimizer.pt, state.json}   resumable state
//   stable-<tokens>/{same files}     wsd with keep_stable: the state when the
//                                    decay of the run for <tokens> began
//   model.safetensors, config.json, tokenizer files            final model
//   curve.csv                                                   step, tokens, train_loss, val_loss, lr, ...
#pragma once
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "supernet/arch_spec.h"
#include "train/dataset.h"
#include "train/recipe.h"
#include "train/tokenizer.h"
#include "train/train_result.h"

namespace flashnas {

class HybridLMImpl;

// Training stopped because the loss became NaN or infinite.
class DivergedError : public Error {
 public:
  using Error::Error;
};

struct Progress {
  int64_t step = 0, steps = 0, tokens = 0, total_tokens = 0;
  double loss = 0, lr = 0, tokens_per_s = 0, eta_s = 0;
  double val_loss = std::numeric_limits<double>::quiet_NaN();
};

class Trainer {
 public:
  Trainer(ArchSpec arch, std::shared_ptr<const TokenDataset> data, std::shared_ptr<const Tokenizer> tokenizer,
          TrainRecipe recipe, std::filesystem::path out_dir);

  // Called about every 2 seconds and at every evaluation.
  void on_progress(std::function<void(const Progress&)> fn) { progress_ = std::move(fn); }
  // Called after every optimizer step with the steps done (fault-injection
  // tests use it to stop a run at an exact step).
  void on_step(std::function<void(int64_t)> fn) { step_hook_ = std::move(fn); }

  // Checks the recipe, device, dtype and that the architecture covers the
  // data's vocabulary; InputError naming the flag otherwise. run() calls it
  // first; callers may call it early to fail before writing anything.
  void check() const;

  // Trains to the end of the recipe (or until `stop_at_step` steps are done,
  // leaving a resumable checkpoint). With `resume`, continues from the run
  // folder's checkpoint, which must match this arch, recipe and data.
  TrainResult run(bool resume, int64_t stop_at_step = -1);

  // wsd schedule only: also keep the state at the start of the decay in
  // stable_dir(out_dir, recipe). A later run for more tokens continues from it.
  void keep_stable(bool on) { keep_stable_ = on; }
  // Trains to the end of the recipe starting from the stable checkpoint of a
  // shorter wsd run of the same architecture, data and recipe (all fields but
  // tokens equal). The result equals, bit for bit on CPU with the same thread
  // count, a run planned for this recipe's tokens from the start. InputError
  // when the checkpoint is missing or was made by another run.
  TrainResult run_from(const std::filesystem::path& stable_checkpoint);

  static std::filesystem::path stable_dir(const std::filesystem::path& out_dir, const TrainRecipe& recipe);

 private:
  TrainResult train(bool resume, const std::filesystem::path& continue_from, int64_t stop_at_step);
  // The finished run's model, tokenizer, config.json and curve.csv in out_.
  void write_final(HybridLMImpl& model, const TrainResult& r) const;

  ArchSpec arch_;
  std::shared_ptr<const TokenDataset> data_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  TrainRecipe recipe_;
  std::filesystem::path out_;
  std::function<void(const Progress&)> progress_;
  std::function<void(int64_t)> step_hook_;
  bool keep_stable_ = false;
};

}  // namespace flashnas
