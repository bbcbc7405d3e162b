// `gla`: gated linear attention (Yang et al. 2023), as flash-linear-attention's
// GatedLinearAttention layer with its defaults (no short convolution, output
// gate with swish, fused per-head RMSNorm). H heads, key dim dk, value dim dv.
//
//   q = W_q x (scaled by dk^-1/2),  k = W_k x,  v = W_v x
//   g = logsigmoid(W_gk1 (W_gk0 x) + b_gk) / gate_normalizer   log forget gate per key dim, <= 0
//   per head, state S in R^{dk x dv}:  S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t;  o_t = q_t S_t
//   o = RMSNorm_per_head(o) * g_norm.weight * silu(W_g x);  out = o_proj(o)
//
// Parameters: q_proj.weight [H*dk, d], k_proj.weight [H*dk, d], v_proj.weight [H*dv, d],
//   g_proj.weight [H*dv, d], gk_proj.0.weight [r, d], gk_proj.1.weight [H*dk, r],
//   gk_proj.1.bias [H*dk], g_norm.weight [dv], o_proj.weight [d, H*dv]   (r = gate_rank)
// Decode state (OpState::buffers): "S" [B, H, dk, dv] float32 (float64 for float64).
//
// The chunked form (chunk C) computes, within a chunk, the exact pairwise
// decays exp(b_i - b_j) per key dim (b = the chunk's cumulative log gates,
// masked to j <= i before the exponential, so only exponentials of
// non-positive numbers are formed), and passes only S between chunks.
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"

namespace flashnas {

struct GlaConfig {
  int64_t n_heads = 4;
  int64_t head_k_dim = 0;       // dk
  int64_t head_v_dim = 0;       // dv
  int64_t gate_rank = 16;       // r, the low-rank forget-gate projection
  double gate_normalizer = 16;  // divides logsigmoid(.) (fla's gate_logit_normalizer)
  int64_t chunk_size = 16;      // C, for the chunked forward (does not change results)
  double norm_eps = 1e-5;

  static GlaConfig from_json(const json& hp);  // canonical hyperparameters (see gla_kind's fields)
};

// q, k [B, H, T, dk] (q already scaled), v [B, H, T, dv], g [B, H, T, dk] (log
// gates <= 0), S0 [B, H, dk, dv] or undefined. Returns o [B, H, T, dv] and the
// final state. Arithmetic in float32 (float64 stays float64).
std::pair<torch::Tensor, torch::Tensor> gla_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                    const torch::Tensor& g, const torch::Tensor& S0, int64_t chunk);
// One step: q, k, g [B, H, dk], v [B, H, dv]; S [B, H, dk, dv] updated in place. Returns o [B, H, dv].
torch::Tensor gla_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                       torch::Tensor& S);

class GlaOp : public Operator {
 public:
  GlaOp(const GlaConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, g_proj{nullptr}, o_proj{nullptr};
  torch::nn::Linear gk_down{nullptr}, gk_up{nullptr};  // gk_proj.0, gk_proj.1
  torch::Tensor g_norm_weight;

 private:
  struct Projected {
    torch::Tensor q, k, v, g;  // [..., H, dk|dv] in the accumulation dtype
  };
  Projected project(const torch::Tensor& x);
  torch::Tensor output(const torch::Tensor& o, const torch::Tensor& x);  // o [..., H, dv] -> [..., d]
  GlaConfig cfg_;
};

OpKind gla_kind();

}  // namespace flashnas
