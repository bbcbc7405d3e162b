// `attn`: causal multi-head attention with grouped-query heads and RoPE.
//
// Parameters (no biases):
//   q_proj.weight [Hq*dh, d]   k_proj.weight [Hkv*dh, d]
//   v_proj.weight [Hkv*dh, d]  o_proj.weight [d, Hq*dh]
// Decode state (OpState::buffers), keys cached after RoPE:
//   "k", "v": [B, Hkv, max_context, dh] in the activation dtype.
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"

namespace flashnas {

struct AttnConfig {
  int64_t n_heads = 8;          // query heads Hq
  int64_t n_kv_heads = 2;       // key/value heads Hkv (divides Hq)
  int64_t head_dim = 0;         // dh; default d_model / n_heads
  double rope_theta = 10000.0;  // RoPE base

  static AttnConfig from_json(const json& hp);  // canonical hyperparameters (see attn_kind's fields)
};

class AttnOp : public Operator {
 public:
  AttnOp(const AttnConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  AttnConfig cfg_;
  int64_t d_model_;
};

OpKind attn_kind();

// The graph-safe decode step of `attn` and `swa` (OpState::pos_dev defined):
// x [B, d] -> [B, d]. q and k are rotated by pos_dev, k and v are written to
// cache slot `slot` (int64 [1] on the device), and the query attends to the
// cache slots s <= pos_dev, all of them once pos_dev reaches the last slot.
torch::Tensor attention_step_on_device(const AttnConfig& a, torch::nn::Linear& q_proj, torch::nn::Linear& k_proj,
                                       torch::nn::Linear& v_proj, torch::nn::Linear& o_proj, const torch::Tensor& x,
                                       OpState& state, const torch::Tensor& slot);

}  // namespace flashnas
