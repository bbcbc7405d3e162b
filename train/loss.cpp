#include "train/loss.h"

#include <torch/nn/functional/loss.h>

namespace flashnas {
namespace F = torch::nn::functional;

namespace {
torch::Tensor per_target(const torch::Tensor& logits, const torch::Tensor& targets) {
  const int64_t V = logits.size(-1);
  return F::cross_entropy(logits.reshape({-1, V}).to(torch::kFloat32), targets.reshape(-1),
                          F::CrossEntropyFuncOptions().reduction(torch::kNone));
}
}  // namespace

torch::Tensor lm_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights) {
  if (!weights.defined()) {
    const int64_t V = logits.size(-1);
    return F::cross_entropy(logits.reshape({-1, V}).to(torch::kFloat32), targets.reshape(-1));
  }
  const auto w = weights.reshape(-1).to(logits.device(), torch::kFloat32);
  // where() rather than a product, so an uncounted target's gradient is exactly zero.
  const auto ce = torch::where(w > 0, per_target(logits, targets), torch::zeros({}, w.options()));
  return ce.sum() / w.sum().clamp_min(1.0);
}

LossSum lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& weights) {
  const auto ce = per_target(logits, targets);
  if (!weights.defined()) return {ce.sum().item<double>(), static_cast<double>(ce.numel())};
  const auto w = weights.reshape(-1).to(logits.device(), torch::kFloat32);
  return {torch::where(w > 0, ce, torch::zeros({}, w.options())).sum().item<double>(), w.sum().item<double>()};
}

}  // namespace flashnas
