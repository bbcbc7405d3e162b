// Rotary position embedding, non-interleaved ("rotate half", NeoX/Llama):
// x' = x * cos(p * f) + rotate_half(x) * sin(p * f), f_i = theta^(-2i/d_h).
// x: [B, H, T, d_h] with d_h even; token j has absolute position pos0 + j.
// Angles are computed in float64 and applied in float32 (float64 for float64).
#pragma once
#include <torch/types.h>

namespace flashnas {

torch::Tensor apply_rope(const torch::Tensor& x, int64_t pos0, double theta);

// The same with the positions read from the device: `positions` int64 [T] on
// x's device (e.g. a decode position kept on the GPU, so a captured CUDA graph
// rotates by whatever position it holds at replay).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta);

}  // namespace flashnas
