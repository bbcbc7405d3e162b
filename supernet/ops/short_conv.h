// Short causal depthwise convolution followed by SiLU (Mamba2's conv1d,
// DeltaNet's q/k/v convs): y_t = silu(sum_{i<K} w[:, i] * x_{t-K+1+i} + b),
// or without the SiLU (silu = false; the `shortconv` operator's conv).
//
// Parameters: weight [D, 1, K] (Conv1d layout), bias [D] (optional).
// Shapes: forward x [B, T, D] -> [B, T, D]; step x [B, D] -> [B, D].
// State: [B, D, K], the last K inputs, oldest first (zeros before position 0),
// kept in the activation dtype. forward() reads its last K-1 columns as left
// context and leaves the last K inputs there.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace flashnas {

class ShortConvImpl : public torch::nn::Module {
 public:
  ShortConvImpl(int64_t channels, int64_t kernel, bool bias, bool silu = true);
  torch::Tensor forward(const torch::Tensor& x, torch::Tensor* state);
  torch::Tensor step(const torch::Tensor& x, torch::Tensor& state);
  torch::Tensor init_state(int64_t batch, torch::ScalarType dtype) const;

  torch::Tensor weight, bias;  // bias undefined when disabled
  int64_t channels, kernel;
  bool silu;
};
TORCH_MODULE(ShortConv);

}  // namespace flashnas
