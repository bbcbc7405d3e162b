// The language-model loss of training and validation, with or without the
// completion mask of task data (train/task_data.h).
#pragma once
#include <torch/types.h>

namespace flashnas {

// Mean cross-entropy in nats over the counted targets, as a float32 scalar.
// logits [B, T, V] (any float dtype; computed in float32), targets [B, T]
// int64, weights [B, T] float32 of 0/1 or undefined (every target counts).
// Targets with weight 0 contribute no value and no gradient; a batch with no
// counted target has loss 0.
torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights);

// The summed cross-entropy (nats) and the number of counted targets, for
// averaging over many batches.
struct LossSum {
  double nats = 0, count = 0;
};
LossSum lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights);

}  // namespace flashnas
