// Parameter construction and initialisation shared by the operators.
#pragma once
#include <torch/nn/modules/linear.h>

namespace flashnas {

// Standard deviation of the normal init used for every projection and the
// embedding (GPT-2/Llama convention).
inline constexpr double kInitStd = 0.02;

// Linear layer in -> out without bias, weight [out, in] ~ N(0, kInitStd^2).
torch::nn::Linear linear_no_bias(int64_t in, int64_t out);

}  // namespace flashnas
