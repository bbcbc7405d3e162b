// `shortconv`: a gated short causal convolution block, as LFM2's ShortConv.
// No attention and no recurrent state beyond the convolution's window.
//
//   [b | c | u] = in_proj(x)  (each d wide);  y = c * conv(b * u);  out = out_proj(y)
//   conv: depthwise causal convolution of width K over time, no activation:
//     conv(z)_t = sum_{i<K} w[:, i] * z_{t-K+1+i} (+ bias), zeros before position 0
//
// Parameters: in_proj.weight [3d, d], conv.weight [d, 1, K], out_proj.weight [d, d];
//   with conv_bias: in_proj.bias [3d], conv.bias [d], out_proj.bias [d].
// Decode state (OpState::buffers): "conv" [B, d, K], the last K inputs of the
//   convolution (b * u), oldest first, in the activation dtype.
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"
#include "supernet/ops/short_conv.h"

namespace flashnas {

struct ShortConvConfig {
  int64_t conv_kernel = 3;  // K (LFM2's L_cache)
  bool conv_bias = false;   // biases on the projections and the convolution

  static ShortConvConfig from_json(const json& hp);  // canonical hyperparameters (see shortconv_kind's fields)
};

class ShortConvOp : public Operator {
 public:
  ShortConvOp(const ShortConvConfig& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr};
  ShortConv conv{nullptr};  // without SiLU

 private:
  int64_t d_;
};

OpKind shortconv_kind();

}  // namespace flashnas
