#include "supernet/ops/shortconv.h"

#include <torch/nn/functional/conv.h>

#include <cmath>

#include "supernet/ops/init.h"

namespace flashnas {

ShortConvConfig ShortConvConfig::from_json(const json& hp) {
  return ShortConvConfig{hp.at("conv_kernel").get<int64_t>(), hp.at("conv_bias").get<bool>()};
}

ShortConvOp::ShortConvOp(const ShortConvConfig& cfg, int64_t d) : cfg_(cfg), d_(d) {
  auto linear = [&](int64_t in, int64_t out) {
    torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(cfg.conv_bias));
    torch::NoGradGuard no_grad;
    l->weight.normal_(0, kInitStd);
    if (cfg.conv_bias) l->bias.zero_();
    return l;
  };
  in_proj = register_module("in_proj", linear(d, 3 * d));
  // PyTorch's Conv1d default init: U(-1/sqrt(K), 1/sqrt(K)) for a depthwise kernel.
  auto conv = register_module("conv", std::make_shared<torch::nn::Module>());
  const double bound = 1.0 / std::sqrt(static_cast<double>(cfg.conv_kernel));
  conv_weight = conv->register_parameter("weight", torch::empty({d, 1, cfg.conv_kernel}).uniform_(-bound, bound));
  if (cfg.conv_bias) conv_bias = conv->register_parameter("bias", torch::empty({d}).uniform_(-bound, bound));
  out_proj = register_module("out_proj", linear(d, d));
}

torch::Tensor ShortConvOp::forward(const torch::Tensor& x, OpState* state) {
  const int64_t B = x.size(0), T = x.size(1), K = cfg_.conv_kernel;
  auto bcu = in_proj->forward(x);  // [B, T, 3d]
  auto c = bcu.narrow(-1, d_, d_);
  auto z = (bcu.narrow(-1, 0, d_) * bcu.narrow(-1, 2 * d_, d_)).transpose(1, 2);  // b * u: [B, d, T]
  torch::Tensor left = state ? state->buffers.at("conv").narrow(2, 1, K - 1).to(z.scalar_type())
                             : torch::zeros({B, d_, K - 1}, z.options());
  auto zp = torch::cat({left, z}, 2);  // [B, d, T + K - 1]
  namespace F = torch::nn::functional;
  auto y = F::conv1d(zp, conv_weight, F::Conv1dFuncOptions().bias(conv_bias).groups(d_)).transpose(1, 2);  // [B, T, d]
  if (state) {
    state->buffers.at("conv").copy_(zp.narrow(2, T - 1, K));
    state->pos += T;
  }
  return out_proj->forward(c * y);
}

torch::Tensor ShortConvOp::step(const torch::Tensor& x, OpState& state) {
  const int64_t K = cfg_.conv_kernel;
  auto bcu = in_proj->forward(x);  // [B, 3d]
  auto& window = state.buffers.at("conv");
  auto z = (bcu.narrow(-1, 0, d_) * bcu.narrow(-1, 2 * d_, d_)).unsqueeze(2).to(window.scalar_type());
  window.copy_(torch::cat({window.narrow(2, 1, K - 1), z}, 2));
  auto y = (window * conv_weight.squeeze(1)).sum(-1);
  if (conv_bias.defined()) y = y + conv_bias;
  state.pos += 1;
  return out_proj->forward(bcu.narrow(-1, d_, d_) * y.to(x.scalar_type()));
}

OpState ShortConvOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  s.buffers["conv"] =
      torch::zeros({batch, d_, cfg_.conv_kernel}, torch::TensorOptions().dtype(dtype).device(conv_weight.device()));
  return s;
}

OpKind shortconv_kind() {
  OpKind k;
  k.name = "shortconv";
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
