#include "supernet/ops/ffn.h"

#include "supernet/ops/init.h"

namespace flashnas {

int64_t FfnConfig::default_d_ff(int64_t d_model) {
  const int64_t raw = (8 * d_model + 2) / 3;  // ceil(8d/3)
  return (raw + 255) / 256 * 256;
}

FfnConfig FfnConfig::from_json(const json& hp) { return FfnConfig{hp.at("d_ff").get<int64_t>()}; }

FfnOp::FfnOp(const FfnConfig& cfg, int64_t d_model) {
  gate_proj = register_module("gate_proj", linear_no_bias(d_model, cfg.d_ff));
  up_proj = register_module("up_proj", linear_no_bias(d_model, cfg.d_ff));
  down_proj = register_module("down_proj", linear_no_bias(cfg.d_ff, d_model));
}

torch::Tensor FfnOp::forward(const torch::Tensor& x, OpState* state) {
  auto y = down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
  if (state) state->pos += x.size(1);
  return y;
}

torch::Tensor FfnOp::step(const torch::Tensor& x, OpState& state) {
  state.pos += 1;
  return down_proj->forward(torch::silu(gate_proj->forward(x)) * up_proj->forward(x));
}

OpState FfnOp::init_state(int64_t, int64_t max_context, torch::ScalarType) const {
  OpState s;
  s.max_context = max_context;
  return s;
}

OpKind ffn_kind() {
  OpKind k;
  k.name = "ffn";
  k.transformers = true;
  k.description = "SwiGLU MLP (gate, up, down); no decode state";
  k.fields = {int_field("d_ff", "hidden width of the SwiGLU MLP", "ceil(8/3 * d_model) rounded up to a multiple of 256",
                        [](const json&, const ModelDims& dims, FieldReader&) { return FfnConfig::default_d_ff(dims.d_model); })};
  k.testing.state = StateKind::none;
  k.testing.cases = {json{{"d_ff", 24}}};
  // transformers' LlamaMLP, with the file's weights: x [B, T, d].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>& meta) {
    const auto& x = in.at("x");
    FfnOp op(FfnConfig{std::stoll(meta.at("d_ff"))}, x.size(-1));
    op.to(x.scalar_type());
    torch::NoGradGuard no_grad;
    for (auto& p : op.named_parameters()) p.value().copy_(in.at(p.key()));
    return OpTesting::Tensors{{"o", op.forward(x, nullptr)}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<FfnOp>(FfnConfig::from_json(hp), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const int64_t d_ff = FfnConfig::from_json(hp).d_ff;
    OpCost cost;
    cost.params = 3 * dims.d_model * d_ff;
    cost.proj_flops_per_token = 2.0 * static_cast<double>(cost.params);
    return cost;
  };
  k.summary = [](const json& hp) { return "d_ff=" + std::to_string(hp.at("d_ff").get<int64_t>()); };
  k.residual_roles = [](const json&) { return ResidualRoles{{"gate_proj.weight", "up_proj.weight"}, {"down_proj.weight"}}; };
  return k;
}

}  // namespace flashnas
