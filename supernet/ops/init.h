// Parameter construction and initialisation shared by the operators.
#pragma once
#include <torch/nn/modules/linear.h>

namespace flashnas {

// Standard deviation of the normal init used for every projection and the
// embedding (GPT-2/Llama convention).
inline constexpr double kInitStd = 0.02;

// Linear layer in -> out without bias, weight [out, in] ~ N(0, kInitStd^2).
torch::nn::Linear linear_no_bias(int64_t in, int64_t out);

// dt_bias [n] for Mamba2 and Gated DeltaNet: softplus^-1(dt) for dt drawn
// log-uniformly from [1e-3, 0.1] (floor 1e-4), as mamba_ssm and fla do.
torch::Tensor init_dt_bias(int64_t n);

}  // namespace flashnas
