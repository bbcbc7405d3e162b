// `deltanet` (and the layer behind `gdn`): the DeltaNet layer as in
// flash-linear-attention. H heads with key dim dk and value dim dv.
//
//   q, k = L2norm(silu(conv(W_q x))), L2norm(silu(conv(W_k x))); q scaled by dk^-1/2
//   v = silu(conv(W_v x));  beta = sigmoid(W_b x)
//   Gated DeltaNet only: g = -exp(A_log) * softplus(W_a x + dt_bias)  (log decay <= 0)
//   o = delta rule (delta_rule.h); o = RMSNorm_per_head(o) * o_norm.weight
//   with use_gate: o = o * silu(W_g x);  out = o_proj(o)
//
// Parameters: q_proj.weight [H*dk, d], k_proj.weight [H*dk, d], v_proj.weight [H*dv, d],
//   b_proj.weight [H, d], q_conv1d.weight [H*dk, 1, K], k_conv1d.weight [H*dk, 1, K],
//   v_conv1d.weight [H*dv, 1, K], o_norm.weight [dv], o_proj.weight [d, H*dv];
//   with use_gate: g_proj.weight [H*dv, d]; gdn: a_proj.weight [H, d], A_log [H], dt_bias [H].
// Decode state (OpState::buffers): "q_conv", "k_conv" [B, H*dk, K], "v_conv" [B, H*dv, K]
//   in the activation dtype; "S" [B, H, dk, dv] float32 (float64 for float64).
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"
#include "supernet/ops/short_conv.h"

namespace flashnas {

struct DeltaNetConfig {
  int64_t n_heads = 4;
  int64_t head_k_dim = 0;   // dk
  int64_t head_v_dim = 0;   // dv
  bool use_gate = false;    // output gate g_proj
  int64_t conv_kernel = 4;
  int64_t chunk_size = 64;  // C, for the chunked forward (does not change results)
  double norm_eps = 1e-5;
  bool decay = false;       // Gated DeltaNet's decay gate (set by the kind, not a hyperparameter)

  static DeltaNetConfig from_json(const json& hp, bool decay);
};

class DeltaNetOp : public Operator {
 public:
  DeltaNetOp(const DeltaNetConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, b_proj{nullptr}, o_proj{nullptr};
  torch::nn::Linear g_proj{nullptr}, a_proj{nullptr};  // g_proj with use_gate; a_proj for gdn
  ShortConv q_conv1d{nullptr}, k_conv1d{nullptr}, v_conv1d{nullptr};
  torch::Tensor o_norm_weight, A_log, dt_bias;

 private:
  struct Projected {
    torch::Tensor q, k, v, beta, g;  // [B, T, H, dk|dv], [B, T, H], g undefined without decay
  };
  Projected project(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& x);
  torch::Tensor output(const torch::Tensor& o, const torch::Tensor& x);  // o [.., H, dv] -> [.., d]
  DeltaNetConfig cfg_;
};

// Shared by deltanet_kind() and gdn_kind(): the field table, accounting and
// residual roles of the DeltaNet family. `decay` selects Gated DeltaNet.
// head_k_dim = 0: its default is d_model / n_heads. Default head_v_dim =
// v_expand * head_k_dim.
std::vector<HpField> deltanet_fields(int64_t n_heads, int64_t head_k_dim, int64_t v_expand, bool use_gate);
OpCost deltanet_cost(const json& hp, const ModelDims& dims, bool decay);
ResidualRoles deltanet_roles(const json& hp, bool decay);
std::string deltanet_summary(const json& hp);

OpKind deltanet_kind();

}  // namespace flashnas
