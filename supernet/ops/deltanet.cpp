#include "supernet/ops/deltanet.h"

#include <torch/nn/functional/activation.h>

#include <cmath>

#include "supernet/ops/delta_rule.h"
#include "supernet/ops/init.h"
#include "supernet/rms_norm.h"

namespace flashnas {

DeltaNetConfig DeltaNetConfig::from_json(const json& hp, bool decay) {
  DeltaNetConfig c;
  c.n_heads = hp.at("n_heads").get<int64_t>();
  c.head_k_dim = hp.at("head_k_dim").get<int64_t>();
  c.head_v_dim = hp.at("head_v_dim").get<int64_t>();
  c.use_gate = hp.at("use_gate").get<bool>();
  c.conv_kernel = hp.at("conv_kernel").get<int64_t>();
  c.chunk_size = hp.at("chunk_size").get<int64_t>();
  c.norm_eps = hp.at("norm_eps").get<double>();
  c.decay = decay;
  return c;
}

DeltaNetOp::DeltaNetOp(const DeltaNetConfig& cfg, int64_t d) : cfg_(cfg) {
  const int64_t H = cfg.n_heads, kd = H * cfg.head_k_dim, vd = H * cfg.head_v_dim;
  q_proj = register_module("q_proj", linear_no_bias(d, kd));
  k_proj = register_module("k_proj", linear_no_bias(d, kd));
  v_proj = register_module("v_proj", linear_no_bias(d, vd));
  b_proj = register_module("b_proj", linear_no_bias(d, H));
  if (cfg.decay) {
    a_proj = register_module("a_proj", linear_no_bias(d, H));
    // A ~ U(0, 16) as in fla (floored away from 0 so log stays finite).
    A_log = register_parameter("A_log", torch::empty({H}).uniform_(0, 16).clamp_min(1e-4).log());
    dt_bias = register_parameter("dt_bias", init_dt_bias(H));
  }
  if (cfg.use_gate) g_proj = register_module("g_proj", linear_no_bias(d, vd));
  q_conv1d = register_module("q_conv1d", ShortConv(kd, cfg.conv_kernel, false));
  k_conv1d = register_module("k_conv1d", ShortConv(kd, cfg.conv_kernel, false));
  v_conv1d = register_module("v_conv1d", ShortConv(vd, cfg.conv_kernel, false));
  auto o_norm = register_module("o_norm", std::make_shared<torch::nn::Module>());
  o_norm_weight = o_norm->register_parameter("weight", torch::ones({cfg.head_v_dim}));
  o_proj = register_module("o_proj", linear_no_bias(vd, d));
}

namespace {
// x / sqrt(sum x^2 + 1e-6) over the last dim (fla's l2norm), in the accumulation dtype.
torch::Tensor l2norm(const torch::Tensor& x) { return x * torch::rsqrt(x.pow(2).sum(-1, true) + 1e-6); }
}  // namespace

DeltaNetOp::Projected DeltaNetOp::project(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                          const torch::Tensor& x) {
  // q, k, v: conv outputs [..., H*dk|H*dv]; x: the layer input [..., d].
  const auto acc = accum_dtype(x.scalar_type());
  auto lead = x.sizes().vec();
  lead.pop_back();
  auto heads = [&](const torch::Tensor& t, int64_t dim) {
    auto s = lead;
    s.push_back(cfg_.n_heads);
    s.push_back(dim);
    return t.reshape(s).to(acc);
  };
  Projected p;
  p.q = l2norm(heads(q, cfg_.head_k_dim)) * (1.0 / std::sqrt(static_cast<double>(cfg_.head_k_dim)));
  p.k = l2norm(heads(k, cfg_.head_k_dim));
  p.v = heads(v, cfg_.head_v_dim);
  p.beta = torch::sigmoid(b_proj->forward(x).to(acc));
  if (cfg_.decay) {
    p.g = -A_log.to(acc).exp() * torch::nn::functional::softplus(a_proj->forward(x).to(acc) + dt_bias.to(acc));
  }
  return p;
}

torch::Tensor DeltaNetOp::output(const torch::Tensor& o, const torch::Tensor& x) {
  const auto acc = accum_dtype(x.scalar_type());
  auto y = o.to(acc);
  y = y * torch::rsqrt(y.pow(2).mean(-1, true) + cfg_.norm_eps) * o_norm_weight.to(acc);
  auto flat_sizes = x.sizes().vec();
  flat_sizes.back() = cfg_.n_heads * cfg_.head_v_dim;
  y = y.reshape(flat_sizes);
  if (cfg_.use_gate) y = y * torch::silu(g_proj->forward(x).to(acc));
  return o_proj->forward(y.to(x.scalar_type()));
}

torch::Tensor DeltaNetOp::forward(const torch::Tensor& x, OpState* state) {
  auto q = q_conv1d->forward(q_proj->forward(x), state ? &state->buffers.at("q_conv") : nullptr);
  auto k = k_conv1d->forward(k_proj->forward(x), state ? &state->buffers.at("k_conv") : nullptr);
  auto v = v_conv1d->forward(v_proj->forward(x), state ? &state->buffers.at("v_conv") : nullptr);
  Projected p = project(q, k, v, x);  // [B, T, H, *]
  auto tr = [](const torch::Tensor& t) { return t.defined() ? t.transpose(1, 2) : t; };  // -> [B, H, T, *]
  torch::Tensor S0 = state ? state->buffers.at("S") : torch::Tensor();
  auto [o, S] = delta_rule_chunked(tr(p.q), tr(p.k), tr(p.v), tr(p.beta), tr(p.g), S0, cfg_.chunk_size);
  if (state) {
    state->buffers.at("S").copy_(S);
    state->pos += x.size(1);
  }
  return output(o.transpose(1, 2), x);
}

torch::Tensor DeltaNetOp::step(const torch::Tensor& x, OpState& state) {
  auto q = q_conv1d->step(q_proj->forward(x), state.buffers.at("q_conv"));
  auto k = k_conv1d->step(k_proj->forward(x), state.buffers.at("k_conv"));
  auto v = v_conv1d->step(v_proj->forward(x), state.buffers.at("v_conv"));
  Projected p = project(q, k, v, x);  // [B, H, *]
  auto o = delta_rule_step(p.q, p.k, p.v, p.beta, p.g, state.buffers.at("S"));
  state.pos += 1;
  return output(o, x);
}

OpState DeltaNetOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  s.buffers["q_conv"] = q_conv1d->init_state(batch, dtype);
  s.buffers["k_conv"] = k_conv1d->init_state(batch, dtype);
  s.buffers["v_conv"] = v_conv1d->init_state(batch, dtype);
  s.buffers["S"] = torch::zeros({batch, cfg_.n_heads, cfg_.head_k_dim, cfg_.head_v_dim},
                                torch::TensorOptions().dtype(accum_dtype(dtype)).device(o_norm_weight.device()));
  return s;
}

std::vector<HpField> deltanet_fields(int64_t n_heads, int64_t head_k_dim, int64_t v_expand, bool use_gate) {
  HpField dk = head_k_dim > 0 ? int_field("head_k_dim", "dk, key width per head", head_k_dim)
                              : int_field("head_k_dim", "dk, key width per head", "d_model / n_heads (n_heads must then divide d_model)",
                                          [](const json& hp, const ModelDims& dims, FieldReader& f) {
                                            const int64_t H = hp["n_heads"];
                                            if (dims.d_model % H != 0) {
                                              f.fail("n_heads", "must divide d_model (" + std::to_string(dims.d_model) +
                                                                    ") when head_k_dim is not given, got " + std::to_string(H));
                                            }
                                            return dims.d_model / H;
                                          });
  return {
      int_field("n_heads", "heads H", n_heads),
      std::move(dk),
      int_field("head_v_dim", "dv, value width per head", v_expand == 1 ? "head_k_dim" : std::to_string(v_expand) + " * head_k_dim",
                [v_expand](const json& hp, const ModelDims&, FieldReader&) { return v_expand * hp["head_k_dim"].get<int64_t>(); }),
      bool_field("use_gate", "output gate g_proj (silu) before the output projection", use_gate),
      int_field("conv_kernel", "K, causal depthwise convolutions on q, k, v", 4, 2),
      int_field("chunk_size", "C, chunk length of the chunked forward (does not change results)", 64),
      number_field("norm_eps", "epsilon of the output RMSNorm", 1e-5),
  };
}

OpCost deltanet_cost(const json& hp, const ModelDims& dims, bool decay) {
  const DeltaNetConfig c = DeltaNetConfig::from_json(hp, decay);
  const int64_t d = dims.d_model, H = c.n_heads, dk = c.head_k_dim, dv = c.head_v_dim, K = c.conv_kernel;
  int64_t matrices = d * (2 * H * dk + H * dv + H) + H * dv * d;
  if (c.use_gate) matrices += d * H * dv;
  if (decay) matrices += d * H;
  const int64_t conv = (2 * H * dk + H * dv) * K;
  OpCost cost;
  cost.params = matrices + conv + dv + (decay ? 2 * H : 0);
  cost.proj_flops_per_token = 2.0 * static_cast<double>(matrices + conv);
  const double per_state = static_cast<double>(H * dk * dv);
  const double decode = (decay ? 7.0 : 6.0) * per_state;
  cost.core_flops_decode = [decode](int64_t) { return decode; };
  const double C = static_cast<double>(c.chunk_size);
  const double prefill = static_cast<double>(H) * (C * static_cast<double>(5 * dk + 3 * dv)) + 6.0 * per_state;
  cost.core_flops_prefill = [prefill](int64_t) { return prefill; };
  const int64_t S = H * dk * dv;
  const int64_t conv_state = (2 * H * dk + H * dv) * K;
  cost.state_bytes = [S, conv_state](int64_t, int64_t act_bytes) { return S * 4 + conv_state * act_bytes; };
  return cost;
}

ResidualRoles deltanet_roles(const json& hp, bool decay) {
  ResidualRoles r{{"q_proj.weight", "k_proj.weight", "v_proj.weight", "b_proj.weight"}, {"o_proj.weight"}};
  if (decay) r.reads.push_back("a_proj.weight");
  if (hp.at("use_gate").get<bool>()) r.reads.push_back("g_proj.weight");
  return r;
}

std::string deltanet_summary(const json& hp) {
  return "heads=" + std::to_string(hp.at("n_heads").get<int64_t>()) +
         " dk=" + std::to_string(hp.at("head_k_dim").get<int64_t>()) +
         " dv=" + std::to_string(hp.at("head_v_dim").get<int64_t>()) + (hp.at("use_gate").get<bool>() ? " gate" : "");
}

OpKind deltanet_kind() {
  OpKind k;
  k.name = "deltanet";
  k.transformers = true;
  k.description = "DeltaNet (chunked WY delta rule; conv + [heads, dk, dv] recurrent state, flat in context)";
  k.fields = deltanet_fields(4, 0, 1, false);
  k.testing.cases = {json{{"n_heads", 2}, {"chunk_size", 8}},
                     json{{"n_heads", 2}, {"head_v_dim", 6}, {"use_gate", true}, {"chunk_size", 8}}};
  k.testing.bench = [](int64_t d) { return json{{"n_heads", std::max<int64_t>(1, d / 64)}}; };
  // fla's delta_rule_recurrence: q, k, v [B, H, T, D] (q scaled by dk^-1/2 inside), beta [B, H, T], S0 [B, H, dk, dv].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>&) {
    const auto& q = in.at("q");
    auto [o, S] = delta_rule_chunked(q / std::sqrt(static_cast<double>(q.size(-1))), in.at("k"), in.at("v"), in.at("beta"),
                                     torch::Tensor(), in.at("S0"), 8);
    return OpTesting::Tensors{{"o", o}, {"state", S}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<DeltaNetOp>(DeltaNetConfig::from_json(hp, false), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) { return deltanet_cost(hp, dims, false); };
  k.summary = deltanet_summary;
  k.residual_roles = [](const json& hp) { return deltanet_roles(hp, false); };
  return k;
}

}  // namespace flashnas
