// Hand-written RMSNorm: y = x * rsqrt(mean(x^2, -1) + eps) * w.
// Computed in float32 (float64 stays float64), returned in x's dtype.
// x: [..., d], weight: [d].
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace flashnas {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x) { return rms_norm(x, weight, eps_); }
  torch::Tensor weight;  // [dim], initialised to 1

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// The dtype in which numerically sensitive reductions run for activations of
// dtype `t`: float64 stays float64, everything else becomes float32.
torch::ScalarType accum_dtype(torch::ScalarType t);

}  // namespace flashnas
