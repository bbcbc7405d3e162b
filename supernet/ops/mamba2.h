// `mamba2`: the Mamba2 layer (state-space duality), following mamba_ssm's
// Mamba2 module. E = expand * d (inner width), H = E / P heads of dim P,
// G groups of B/C with state size N, conv kernel K = 4.
//
//   in_proj: d -> [z (E) | xBC (E + 2GN) | dt (H)]
//   xBC -> causal depthwise conv (bias) + SiLU -> x [H, P], B [G, N], C [G, N]
//   dt = softplus(dt + dt_bias), A = -exp(A_log); SSD recurrence (ssd.h), + D * x
//   y = RMSNorm_grouped(y * silu(z)) * norm.weight (gate before norm, groups of E/G)
//   out_proj: E -> d
//
// Parameters: in_proj.weight [2E + 2GN + H, d], conv1d.weight [E + 2GN, 1, K],
//   conv1d.bias [E + 2GN], dt_bias [H], A_log [H], D [H], norm.weight [E],
//   out_proj.weight [d, E]
// Decode state (OpState::buffers):
//   "conv": [B, E + 2GN, K] activation dtype;  "ssm": [B, H, P, N] float32 (float64 for float64)
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"
#include "supernet/ops/short_conv.h"

namespace flashnas {

struct Mamba2Config {
  int64_t expand = 2;
  int64_t head_dim = 64;    // P
  int64_t d_state = 128;    // N
  int64_t n_groups = 1;     // G
  int64_t conv_kernel = 4;  // K
  int64_t chunk_size = 64;  // Q, for the chunked forward (does not change results)
  double norm_eps = 1e-5;

  static Mamba2Config from_json(const json& hp);  // canonical hyperparameters (see mamba2_kind's fields)
};

class Mamba2Op : public Operator {
 public:
  Mamba2Op(const Mamba2Config& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr};
  ShortConv conv1d{nullptr};
  torch::Tensor dt_bias, A_log, D, norm_weight;

 private:
  // Gated RMSNorm: norm(y * silu(z)) over groups of E/G, times norm.weight.
  torch::Tensor gated_norm(const torch::Tensor& y, const torch::Tensor& z) const;
  Mamba2Config cfg_;
  int64_t E_, H_, GN_;
};

OpKind mamba2_kind();

}  // namespace flashnas
