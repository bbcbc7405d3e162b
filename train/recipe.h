// The short-training recipe: the same for every candidate of a search.
// Defaults follow the paper where it speaks (Adam without weight decay when
// weight normalization is on, LR 1e-3, warmup then cosine, clipping).
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
  // Learning rate for optimizer step `step` (0-based).
  double lr_at(int64_t step) const;
  // Throws InputError naming the flag for values out of range.
  void validate() const;

  json to_json() const;
  static TrainRecipe from_json(const json& j, const std::string& source);
};

}  // namespace flashnas
