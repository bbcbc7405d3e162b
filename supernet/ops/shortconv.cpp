#include "supernet/ops/shortconv.h"

#include "supernet/ops/init.h"

namespace flashnas {

ShortConvConfig ShortConvConfig::from_json(const json& hp) {
  return ShortConvConfig{hp.at("conv_kernel").get<int64_t>(), hp.at("conv_bias").get<bool>()};
}

ShortConvOp::ShortConvOp(const ShortConvConfig& cfg, int64_t d) : d_(d) {
  auto linear = [&](int64_t in, int64_t out) {
    torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(cfg.conv_bias));
    torch::NoGradGuard no_grad;
    l->weight.normal_(0, kInitStd);
    if (cfg.conv_bias) l->bias.zero_();
    return l;
  };
  in_proj = register_module("in_proj", linear(d, 3 * d));
  conv = register_module("conv", ShortConv(d, cfg.conv_kernel, cfg.conv_bias, /*silu=*/false));
  out_proj = register_module("out_proj", linear(d, d));
}

torch::Tensor ShortConvOp::forward(const torch::Tensor& x, OpState* state) {
  auto bcu = in_proj->forward(x);  // [B, T, 3d]
  auto y = conv->forward(bcu.narrow(-1, 0, d_) * bcu.narrow(-1, 2 * d_, d_), state ? &state->buffers.at("conv") : nullptr);
  if (state) state->pos += x.size(1);
  return out_proj->forward(bcu.narrow(-1, d_, d_) * y);
}

torch::Tensor ShortConvOp::step(const torch::Tensor& x, OpState& state) {
  auto bcu = in_proj->forward(x);  // [B, 3d]
  auto y = conv->step(bcu.narrow(-1, 0, d_) * bcu.narrow(-1, 2 * d_, d_), state.buffers.at("conv"));
  state.pos += 1;
  return out_proj->forward(bcu.narrow(-1, d_, d_) * y.to(x.scalar_type()));
}

OpState ShortConvOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  s.buffers["conv"] = conv->init_state(batch, dtype);
  return s;
}

OpKind shortconv_kind() {
  OpKind k;
  k.name = "shortconv";
  k.transformers = true;
  k.description = "gated short convolution (LFM2): c * conv(b * u); a K-token window as state, flat in context";
  k.fields = {
      int_field("conv_kernel", "K, width of the causal depthwise convolution", 3, 2),
      bool_field("conv_bias", "biases on in_proj, the convolution and out_proj", false),
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<ShortConvOp>(ShortConvConfig::from_json(hp), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const ShortConvConfig c = ShortConvConfig::from_json(hp);
    const int64_t d = dims.d_model, K = c.conv_kernel, matrices = 4 * d * d;
    OpCost cost;
    cost.params = matrices + d * K + (c.conv_bias ? 3 * d + d + d : 0);
    cost.proj_flops_per_token = 2.0 * static_cast<double>(matrices) + 2.0 * static_cast<double>(d * K);
    const double gates = 2.0 * static_cast<double>(d);  // b * u and c * y
    cost.core_flops_decode = [gates](int64_t) { return gates; };
    cost.core_flops_prefill = [gates](int64_t) { return gates; };
    cost.state_bytes = [d, K](int64_t, int64_t act_bytes) { return d * K * act_bytes; };
    return cost;
  };
  k.summary = [](const json& hp) {
    return "K=" + std::to_string(hp.at("conv_kernel").get<int64_t>()) + (hp.at("conv_bias").get<bool>() ? " bias" : "");
  };
  k.residual_roles = [](const json&) { return ResidualRoles{{"in_proj.weight"}, {"out_proj.weight"}}; };
  k.testing.cases = {json{{"conv_kernel", 3}}, json{{"conv_kernel", 4}, {"conv_bias", true}}};
  k.testing.bench = [](int64_t) { return json::object(); };
  // transformers' Lfm2ShortConv, with the file's weights: x [B, T, d].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>& meta) {
    const auto& x = in.at("x");
    ShortConvOp op(ShortConvConfig{std::stoll(meta.at("conv_kernel")), meta.at("conv_bias") == "true"}, x.size(-1));
    op.to(x.scalar_type());
    torch::NoGradGuard no_grad;
    for (auto& p : op.named_parameters()) p.value().copy_(in.at(p.key()));
    return OpTesting::Tensors{{"o", op.forward(x, nullptr)}};
  };
  return k;
}

}  // namespace flashnas
