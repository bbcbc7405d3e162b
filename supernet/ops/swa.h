// `swa`: sliding-window attention. A query sees the W most recent keys
// including itself (key j visible to query i iff i - W < j <= i), with
// grouped-query heads and RoPE as in `attn`.
//
// Parameters (no biases): q_proj.weight [Hq*dh, d], k_proj.weight [Hkv*dh, d],
//   v_proj.weight [Hkv*dh, d], o_proj.weight [d, Hq*dh]
// Decode state (OpState::buffers), a ring buffer of W entries; the key of
// absolute position p lives in slot p mod W, cached after RoPE:
//   "k", "v": [B, Hkv, W, dh] in the activation dtype.
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/attn.h"
#include "supernet/ops/op_kind.h"

namespace flashnas {

struct SwaConfig {
  AttnConfig attn;      // heads, kv heads, head dim, RoPE base (as `attn`)
  int64_t window = 512; // W (the paper's search uses 512)

  static SwaConfig from_json(const json& hp);  // canonical hyperparameters (see swa_kind's fields)
};

class SwaOp : public Operator {
 public:
  SwaOp(const SwaConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  SwaConfig cfg_;
};

OpKind swa_kind();

}  // namespace flashnas
