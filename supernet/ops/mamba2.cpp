#include "supernet/ops/mamba2.h"

#include <torch/nn/functional/activation.h>

#include <cmath>

#include "supernet/ops/init.h"
#include "supernet/ops/ssd.h"
#include "supernet/rms_norm.h"

namespace flashnas {

Mamba2Config Mamba2Config::from_json(const json& hp) {
  Mamba2Config c;
  c.expand = hp.at("expand").get<int64_t>();
  c.head_dim = hp.at("head_dim").get<int64_t>();
  c.d_state = hp.at("d_state").get<int64_t>();
  c.n_groups = hp.at("n_groups").get<int64_t>();
  c.conv_kernel = hp.at("conv_kernel").get<int64_t>();
  c.chunk_size = hp.at("chunk_size").get<int64_t>();
  c.norm_eps = hp.at("norm_eps").get<double>();
  return c;
}

Mamba2Op::Mamba2Op(const Mamba2Config& cfg, int64_t d_model) : cfg_(cfg) {
  E_ = cfg.expand * d_model;
  H_ = E_ / cfg.head_dim;
  GN_ = cfg.n_groups * cfg.d_state;
  in_proj = register_module("in_proj", linear_no_bias(d_model, 2 * E_ + 2 * GN_ + H_));
  conv1d = register_module("conv1d", ShortConv(E_ + 2 * GN_, cfg.conv_kernel, /*bias=*/true));
  dt_bias = register_parameter("dt_bias", init_dt_bias(H_));
  A_log = register_parameter("A_log", torch::empty({H_}).uniform_(1, 16).log());
  D = register_parameter("D", torch::ones({H_}));
  // Registered as a child so the name is norm.weight, as in mamba_ssm.
  auto norm = register_module("norm", std::make_shared<torch::nn::Module>());
  norm_weight = norm->register_parameter("weight", torch::ones({E_}));
  out_proj = register_module("out_proj", linear_no_bias(E_, d_model));
}

torch::Tensor Mamba2Op::gated_norm(const torch::Tensor& y, const torch::Tensor& z) const {
  const auto acc = accum_dtype(y.scalar_type());
  auto g = y.to(acc) * torch::silu(z.to(acc));
  auto sizes = g.sizes().vec();
  auto grouped = g.reshape({-1, cfg_.n_groups, E_ / cfg_.n_groups});
  grouped = grouped * torch::rsqrt(grouped.pow(2).mean(-1, true) + cfg_.norm_eps);
  return (grouped.reshape(sizes) * norm_weight.to(acc)).to(y.scalar_type());
}

torch::Tensor Mamba2Op::forward(const torch::Tensor& x, OpState* state) {
  const int64_t B = x.size(0), T = x.size(1), P = cfg_.head_dim, N = cfg_.d_state, G = cfg_.n_groups;
  const auto acc = accum_dtype(x.scalar_type());
  auto zxbcdt = in_proj->forward(x);
  auto z = zxbcdt.narrow(-1, 0, E_);
  auto xBC = zxbcdt.narrow(-1, E_, E_ + 2 * GN_);
  auto dt_raw = zxbcdt.narrow(-1, 2 * E_ + 2 * GN_, H_);
  xBC = conv1d->forward(xBC, state ? &state->buffers.at("conv") : nullptr);
  auto xs = xBC.narrow(-1, 0, E_).reshape({B, T, H_, P}).to(acc);
  auto Bm = xBC.narrow(-1, E_, GN_).reshape({B, T, G, N});  // per group; ssd_chunked maps heads to groups
  auto Cm = xBC.narrow(-1, E_ + GN_, GN_).reshape({B, T, G, N});
  auto dt = torch::nn::functional::softplus(dt_raw.to(acc) + dt_bias.to(acc));  // [B, T, H]
  auto A = -A_log.to(acc).exp();                                                // [H]
  torch::Tensor h0 = state ? state->buffers.at("ssm") : torch::Tensor();
  auto [y, hT] = ssd_chunked(xs * dt.unsqueeze(-1), dt * A, Bm, Cm, h0, cfg_.chunk_size);
  y = y + xs * D.to(acc).view({1, 1, H_, 1});
  if (state) {
    state->buffers.at("ssm").copy_(hT);
    state->pos += T;
  }
  auto out = gated_norm(y.reshape({B, T, E_}).to(x.scalar_type()), z);
  return out_proj->forward(out);
}

torch::Tensor Mamba2Op::step(const torch::Tensor& x, OpState& state) {
  const int64_t B = x.size(0), P = cfg_.head_dim, N = cfg_.d_state, G = cfg_.n_groups;
  const auto acc = accum_dtype(x.scalar_type());
  auto zxbcdt = in_proj->forward(x);  // [B, ...]
  auto z = zxbcdt.narrow(-1, 0, E_);
  auto xBC = conv1d->step(zxbcdt.narrow(-1, E_, E_ + 2 * GN_), state.buffers.at("conv"));
  auto dt_raw = zxbcdt.narrow(-1, 2 * E_ + 2 * GN_, H_);
  auto xs = xBC.narrow(-1, 0, E_).reshape({B, H_, P}).to(acc);
  auto Bm = xBC.narrow(-1, E_, GN_).reshape({B, G, N}).repeat_interleave(H_ / G, 1).to(acc);  // [B, H, N]
  auto Cm = xBC.narrow(-1, E_ + GN_, GN_).reshape({B, G, N}).repeat_interleave(H_ / G, 1).to(acc);
  auto dt = torch::nn::functional::softplus(dt_raw.to(acc) + dt_bias.to(acc));  // [B, H]
  auto dA = (dt * -A_log.to(acc).exp()).exp();                                  // [B, H]
  auto& h = state.buffers.at("ssm");                                            // [B, H, P, N]
  h.copy_(h * dA.unsqueeze(-1).unsqueeze(-1) + (xs * dt.unsqueeze(-1)).unsqueeze(-1) * Bm.unsqueeze(-2));
  auto y = torch::matmul(h, Cm.unsqueeze(-1)).squeeze(-1) + xs * D.to(acc).view({1, H_, 1});  // [B, H, P]
  state.pos += 1;
  return out_proj->forward(gated_norm(y.reshape({B, E_}).to(x.scalar_type()), z));
}

OpState Mamba2Op::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  s.buffers["conv"] = conv1d->init_state(batch, dtype);
  s.buffers["ssm"] = torch::zeros({batch, H_, cfg_.head_dim, cfg_.d_state},
                                  torch::TensorOptions().dtype(accum_dtype(dtype)).device(D.device()));
  return s;
}

OpKind mamba2_kind() {
  OpKind k;
  k.name = "mamba2";
  k.transformers = true;
  k.description = "Mamba2 (chunked SSD; conv + [heads, head_dim, d_state] recurrent state, flat in context)";
  k.fields = {
      int_field("expand", "inner width E = expand * d_model", 2),
      int_field("head_dim", "P, per head (must divide E)", 64),
      int_field("d_state", "N, state size per head", 128),
      int_field("n_groups", "G, groups sharing B and C (must divide the heads E / P)", 1),
      int_field("conv_kernel", "K, causal depthwise convolution width", 4, 2),
      int_field("chunk_size", "Q, chunk length of the chunked SSD forward (does not change results)", 64),
      number_field("norm_eps", "epsilon of the gated RMSNorm", 1e-5),
  };
  k.check = [](const json& hp, const ModelDims& dims, FieldReader& f) {
    const int64_t E = hp["expand"].get<int64_t>() * dims.d_model, P = hp["head_dim"], G = hp["n_groups"];
    if (E % P != 0) f.fail("head_dim", "must divide expand * d_model (" + std::to_string(E) + "), got " + std::to_string(P));
    if ((E / P) % G != 0) {
      f.fail("n_groups", "must divide the number of heads expand * d_model / head_dim (" + std::to_string(E / P) +
                             "), got " + std::to_string(G));
    }
  };
  k.testing.cases = {json{{"expand", 2}, {"head_dim", 8}, {"d_state", 6}, {"n_groups", 2}, {"chunk_size", 8}}};
  k.testing.bench = [](int64_t) { return json::object(); };
  // mamba_ssm's ssd_minimal_discrete: x [B, T, H, P], a [B, T, H], B, C [B, T, H, N], h0 [B, H, P, N].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>&) {
    auto [y, h] = ssd_chunked(in.at("x"), in.at("a"), in.at("B"), in.at("C"), in.at("h0"), 8);
    return OpTesting::Tensors{{"y", y}, {"state", h}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<Mamba2Op>(Mamba2Config::from_json(hp), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const Mamba2Config c = Mamba2Config::from_json(hp);
    const int64_t d = dims.d_model, E = c.expand * d, H = E / c.head_dim, GN = c.n_groups * c.d_state;
    const int64_t conv_dim = E + 2 * GN, K = c.conv_kernel;
    OpCost cost;
    const int64_t matrices = d * (2 * E + 2 * GN + H) + E * d;
    cost.params = matrices + conv_dim * K + conv_dim + 3 * H + E;
    cost.proj_flops_per_token = 2.0 * static_cast<double>(matrices) + 2.0 * static_cast<double>(conv_dim * K);
    // Decode: state update (decay, outer product) and readout, ~5 E N (reference table).
    const double decode = 5.0 * static_cast<double>(E * c.d_state);
    cost.core_flops_decode = [decode](int64_t) { return decode; };
    // Chunked prefill per token: ~2Q(GN + E) within the chunk + 4EN for states.
    const double Q = static_cast<double>(c.chunk_size);
    const double prefill = 2.0 * Q * static_cast<double>(GN + E) + 4.0 * static_cast<double>(E * c.d_state);
    cost.core_flops_prefill = [prefill](int64_t) { return prefill; };
    const int64_t ssm = H * c.head_dim * c.d_state;  // float32 always
    cost.state_bytes = [ssm, conv_dim, K](int64_t, int64_t act_bytes) {
      return ssm * 4 + conv_dim * K * act_bytes;
    };
    return cost;
  };
  k.summary = [](const json& hp) {
    return "x" + std::to_string(hp.at("expand").get<int64_t>()) + " P=" + std::to_string(hp.at("head_dim").get<int64_t>()) +
           " N=" + std::to_string(hp.at("d_state").get<int64_t>()) +
           " G=" + std::to_string(hp.at("n_groups").get<int64_t>());
  };
  k.residual_roles = [](const json&) { return ResidualRoles{{"in_proj.weight"}, {"out_proj.weight"}}; };
  return k;
}

}  // namespace flashnas
