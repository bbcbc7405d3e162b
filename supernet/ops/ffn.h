// `ffn`: SwiGLU MLP, y = down_proj(silu(gate_proj(x)) * up_proj(x)).
//
// Parameters (no biases):
//   gate_proj.weight [d_ff, d]  up_proj.weight [d_ff, d]  down_proj.weight [d, d_ff]
// Decode state: none (step is forward on one token).
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"

namespace flashnas {

struct FfnConfig {
  int64_t d_ff = 0;  // default: 8/3 * d_model rounded up to a multiple of 256 (fla GatedMLP)

  static FfnConfig from_json(const json& hp);  // canonical hyperparameters (see ffn_kind's fields)
  static int64_t default_d_ff(int64_t d_model);
};

class FfnOp : public Operator {
 public:
  FfnOp(const FfnConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};

OpKind ffn_kind();

}  // namespace flashnas
