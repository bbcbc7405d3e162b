// The short-training recipe: the same for every candidate of a search.
// Defaults follow the paper where it speaks (Adam without weight decay when
// weight normalization is on, LR 1e-3, warmup then cosine, clipping).
//
// Schedules (lr_at):
//   "cosine": linear warmup, then cosine from lr down to min_lr_ratio * lr at
//             the last step. Every step's rate depends on the run's length.
//   "wsd":    warmup-stable-decay: linear warmup, the peak lr held constant,
//             then a linear decay to min_lr_ratio * lr over the last
//             decay_fraction of the steps. Up to stable_end_step() the rates
//             do not depend on the run's length, so a run planned for N
//             tokens continued from another run's state at that run's stable
//             end is the same run, bit for bit, as one planned for N from the
//             start (multi-fidelity training continues candidates this way).
//             warmup_tokens fixes the warmup independently of the length.
#pragma once
#include <cstdint>
#include <string>

#include "common/json_io.h"

namespace flashnas {

struct TrainRecipe {
  int64_t tokens = 0;              // training tokens (rounded up to whole steps)
  int64_t batch_size = 16;         // sequences per step
  int64_t seq_len = 256;           // tokens per sequence
  double lr = 1e-3;                // peak learning rate
  double min_lr_ratio = 0.1;       // cosine floor, as a fraction of lr
  double warmup_fraction = 0.05;   // linear warmup over this share of the steps (at least 1 step)
  int64_t warmup_tokens = 0;       // > 0: warmup over this many tokens (whole steps) instead of warmup_fraction
  std::string schedule = "cosine"; // "cosine" | "wsd" (see above)
  double decay_fraction = 0.2;     // wsd: share of the steps in the final decay (at least 1 step)
  double weight_decay = 0.0;       // AdamW decay on matrices that are not weight-normalised
  double grad_clip = 1.0;          // global L2 norm; 0 disables
  bool weight_norm = true;         // the paper's weight normalization after every step
  uint64_t seed = 0;               // model init, data split and batch order
  int64_t eval_interval = 100;     // steps between evaluations (and checkpoints); 0: at the end only
  int64_t eval_batches = 8;        // fixed validation batches per evaluation
  double val_fraction = 0.05;      // share of documents held out for validation
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;                 // CPU intra-op threads; 0 keeps LibTorch's default

  int64_t tokens_per_step() const { return batch_size * seq_len; }
  int64_t steps() const { return (tokens + tokens_per_step() - 1) / tokens_per_step(); }
  int64_t warmup_steps() const;
  // wsd: steps done when the decay begins (the last step at the peak rate is
  // stable_end_step() - 1); cosine: 0 (no step's rate is length-independent
  // after warmup).
  int64_t stable_end_step() const;
  // Learning rate for optimizer step `step` (0-based).
  double lr_at(int64_t step) const;
  // Throws InputError naming the flag for values out of range (with
  // `fields`, the field of the file being read instead).
  void validate(const FieldReader* fields = nullptr) const;

  json to_json() const;
  // `where` prefixes the field names in messages ("train" for a config's
  // [train] table).
  static TrainRecipe from_json(const json& j, const std::string& source, const std::string& where = "recipe");
};

}  // namespace flashnas
