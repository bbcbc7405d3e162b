#include "supernet/ops/gla.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>

#include <cmath>
#include <limits>

#include "supernet/ops/init.h"
#include "supernet/rms_norm.h"

namespace flashnas {

GlaConfig GlaConfig::from_json(const json& hp) {
  GlaConfig c;
  c.n_heads = hp.at("n_heads").get<int64_t>();
  c.head_k_dim = hp.at("head_k_dim").get<int64_t>();
  c.head_v_dim = hp.at("head_v_dim").get<int64_t>();
  c.gate_rank = hp.at("gate_rank").get<int64_t>();
  c.gate_normalizer = hp.at("gate_normalizer").get<double>();
  c.chunk_size = hp.at("chunk_size").get<int64_t>();
  c.norm_eps = hp.at("norm_eps").get<double>();
  return c;
}

std::pair<torch::Tensor, torch::Tensor> gla_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                    const torch::Tensor& g, const torch::Tensor& S0, int64_t chunk) {
  const auto acc = accum_dtype(q.scalar_type());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), dk = q.size(3), dv = v.size(3);
  const int64_t C = chunk, n = (T + C - 1) / C, pad = n * C - T;
  namespace F = torch::nn::functional;
  // Padded positions have k = 0 (no contribution) and g = 0 (no decay).
  auto chunks = [&](const torch::Tensor& t) {
    auto u = t.to(acc);
    if (pad > 0) u = F::pad(u, F::PadFuncOptions({0, 0, 0, pad}));
    return u.reshape({B, H, n, C, u.size(-1)});
  };
  auto qc = chunks(q), kc = chunks(k), vc = chunks(v);
  auto b = chunks(g).cumsum(3);  // [B, H, n, C, dk], non-increasing along the chunk
  // Within a chunk: A[i, j] = sum_k q_i[k] k_j[k] exp(b_i[k] - b_j[k]) for j <= i.
  auto upper = torch::ones({C, C}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  auto decay = (b.unsqueeze(4) - b.unsqueeze(3))
                   .masked_fill(upper.view({C, C, 1}), -std::numeric_limits<double>::infinity())
                   .exp();                                                      // [B, H, n, C, C, dk]
  auto A = (qc.unsqueeze(4) * kc.unsqueeze(3) * decay).sum(-1);                // [B, H, n, C, C]
  auto intra = torch::matmul(A, vc);                                            // [B, H, n, C, dv]
  // Between chunks: only the state is passed.
  auto last = b.select(3, C - 1);                                               // [B, H, n, dk]
  auto q_decayed = qc * b.exp();                                                // decay from the chunk start
  auto k_decayed = kc * (last.unsqueeze(3) - b).exp();                          // decay to the chunk end
  torch::Tensor S = S0.defined() ? S0.to(acc) : torch::zeros({B, H, dk, dv}, q.options().dtype(acc));
  std::vector<torch::Tensor> out;
  out.reserve(size_t(n));
  for (int64_t c = 0; c < n; ++c) {
    out.push_back(intra.select(2, c) + torch::matmul(q_decayed.select(2, c), S));
    S = last.select(2, c).exp().unsqueeze(-1) * S + torch::matmul(k_decayed.select(2, c).transpose(-1, -2), vc.select(2, c));
  }
  auto o = torch::stack(out, 2).reshape({B, H, n * C, dv}).narrow(2, 0, T);
  return {o, S};
}

torch::Tensor gla_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& g,
                       torch::Tensor& S) {
  S.copy_(g.exp().unsqueeze(-1) * S + k.unsqueeze(-1) * v.unsqueeze(-2));
  return (q.unsqueeze(-1) * S).sum(-2);
}

GlaOp::GlaOp(const GlaConfig& cfg, int64_t d) : cfg_(cfg) {
  const int64_t kd = cfg.n_heads * cfg.head_k_dim, vd = cfg.n_heads * cfg.head_v_dim;
  q_proj = register_module("q_proj", linear_no_bias(d, kd));
  k_proj = register_module("k_proj", linear_no_bias(d, kd));
  v_proj = register_module("v_proj", linear_no_bias(d, vd));
  g_proj = register_module("g_proj", linear_no_bias(d, vd));
  // Named gk_proj.0 / gk_proj.1, as fla's nn.Sequential.
  auto gk = register_module("gk_proj", std::make_shared<torch::nn::Module>());
  gk_down = gk->register_module("0", linear_no_bias(d, cfg.gate_rank));
  gk_up = gk->register_module("1", torch::nn::Linear(torch::nn::LinearOptions(cfg.gate_rank, kd).bias(true)));
  {
    torch::NoGradGuard no_grad;
    gk_up->weight.normal_(0, kInitStd);
    gk_up->bias.zero_();
  }
  auto norm = register_module("g_norm", std::make_shared<torch::nn::Module>());
  g_norm_weight = norm->register_parameter("weight", torch::ones({cfg.head_v_dim}));
  o_proj = register_module("o_proj", linear_no_bias(vd, d));
}

GlaOp::Projected GlaOp::project(const torch::Tensor& x) {
  const auto acc = accum_dtype(x.scalar_type());
  auto heads = [&](const torch::Tensor& t, int64_t dim) {
    auto s = x.sizes().vec();
    s.back() = cfg_.n_heads;
    s.push_back(dim);
    return t.reshape(s).to(acc);
  };
  Projected p;
  p.q = heads(q_proj->forward(x), cfg_.head_k_dim) * (1.0 / std::sqrt(static_cast<double>(cfg_.head_k_dim)));
  p.k = heads(k_proj->forward(x), cfg_.head_k_dim);
  p.v = heads(v_proj->forward(x), cfg_.head_v_dim);
  auto logits = gk_up->forward(gk_down->forward(x)).to(acc);
  p.g = heads(torch::nn::functional::logsigmoid(logits) / cfg_.gate_normalizer, cfg_.head_k_dim);
  return p;
}

torch::Tensor GlaOp::output(const torch::Tensor& o, const torch::Tensor& x) {
  const auto acc = accum_dtype(x.scalar_type());
  auto y = o.to(acc);
  y = y * torch::rsqrt(y.pow(2).mean(-1, true) + cfg_.norm_eps) * g_norm_weight.to(acc);
  auto flat = x.sizes().vec();
  flat.back() = cfg_.n_heads * cfg_.head_v_dim;
  y = y.reshape(flat) * torch::silu(g_proj->forward(x).to(acc));
  return o_proj->forward(y.to(x.scalar_type()));
}

torch::Tensor GlaOp::forward(const torch::Tensor& x, OpState* state) {
  Projected p = project(x);  // [B, T, H, *]
  auto tr = [](const torch::Tensor& t) { return t.transpose(1, 2); };
  torch::Tensor S0 = state ? state->buffers.at("S") : torch::Tensor();
  auto [o, S] = gla_chunked(tr(p.q), tr(p.k), tr(p.v), tr(p.g), S0, cfg_.chunk_size);
  if (state) {
    state->buffers.at("S").copy_(S);
    state->pos += x.size(1);
  }
  return output(o.transpose(1, 2), x);
}

torch::Tensor GlaOp::step(const torch::Tensor& x, OpState& state) {
  Projected p = project(x);  // [B, H, *]
  auto o = gla_step(p.q, p.k, p.v, p.g, state.buffers.at("S"));
  state.pos += 1;
  return output(o, x);
}

OpState GlaOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  s.buffers["S"] = torch::zeros({batch, cfg_.n_heads, cfg_.head_k_dim, cfg_.head_v_dim},
                                torch::TensorOptions().dtype(accum_dtype(dtype)).device(g_norm_weight.device()));
  return s;
}

OpKind gla_kind() {
  OpKind k;
  k.name = "gla";
  k.transformers = true;
  k.description = "gated linear attention (forget gate per key dim; chunked; [heads, dk, dv] recurrent state, flat in context)";
  // Default head widths d_model / (parts * n_heads), refused by name where that does not divide.
  auto divides = [](int64_t parts, std::string key) {
    return [parts, key](const json& hp, const ModelDims& dims, FieldReader& f) {
      const int64_t H = hp["n_heads"], D = dims.d_model;
      if (D % (parts * H) != 0) {
        f.fail("n_heads", (parts == 1 ? std::string("must divide") : std::to_string(parts) + " * n_heads must divide") +
                              " d_model (" + std::to_string(D) + ") when " + key + " is not given, got " + std::to_string(H));
      }
      return D / (parts * H);
    };
  };
  k.fields = {
      int_field("n_heads", "heads H", 4),
      int_field("head_k_dim", "dk, key width per head", "d_model / (2 n_heads) (fla's expand_k = 0.5)",
                divides(2, "head_k_dim")),
      int_field("head_v_dim", "dv, value width per head", "d_model / n_heads", divides(1, "head_v_dim")),
      int_field("gate_rank", "r, rank of the forget-gate projection", 16),
      number_field("gate_normalizer", "divides logsigmoid of the forget-gate logits", 16),
      int_field("chunk_size", "C, chunk length of the chunked forward (does not change results)", 16),
      number_field("norm_eps", "epsilon of the per-head output RMSNorm", 1e-5),
  };
  k.create = [](const json& hp, const ModelDims& dims) { return std::make_shared<GlaOp>(GlaConfig::from_json(hp), dims.d_model); };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const GlaConfig c = GlaConfig::from_json(hp);
    const int64_t d = dims.d_model, H = c.n_heads, dk = c.head_k_dim, dv = c.head_v_dim, r = c.gate_rank;
    const int64_t matrices = d * (2 * H * dk + 2 * H * dv) + d * r + r * H * dk + H * dv * d;
    OpCost cost;
    cost.params = matrices + H * dk + dv;
    cost.proj_flops_per_token = 2.0 * static_cast<double>(matrices);
    const double per_state = static_cast<double>(H * dk * dv);
    // Decode: decay, outer product and add (3 per entry), readout (2 per entry).
    cost.core_flops_decode = [per_state](int64_t) { return 5.0 * per_state; };
    // Chunked prefill per token: pairwise decays and scores over the chunk
    // (~4 C dk per head), their product with v (2 C dv), state readout and update (4 dk dv).
    const double C = static_cast<double>(c.chunk_size);
    const double prefill = static_cast<double>(H) * C * static_cast<double>(4 * dk + 2 * dv) + 4.0 * per_state;
    cost.core_flops_prefill = [prefill](int64_t) { return prefill; };
    const int64_t S = H * dk * dv;
    cost.state_bytes = [S](int64_t, int64_t) { return S * 4; };
    return cost;
  };
  k.summary = [](const json& hp) {
    return "heads=" + std::to_string(hp.at("n_heads").get<int64_t>()) + " dk=" + std::to_string(hp.at("head_k_dim").get<int64_t>()) +
           " dv=" + std::to_string(hp.at("head_v_dim").get<int64_t>());
  };
  k.residual_roles = [](const json&) {
    return ResidualRoles{{"q_proj.weight", "k_proj.weight", "v_proj.weight", "g_proj.weight", "gk_proj.0.weight"},
                         {"o_proj.weight"}};
  };
  k.testing.cases = {json{{"n_heads", 2}, {"chunk_size", 8}},
                     json{{"n_heads", 2}, {"head_k_dim", 6}, {"head_v_dim", 5}, {"gate_rank", 4}, {"gate_normalizer", 1.0},
                          {"chunk_size", 8}}};
  k.testing.bench = [](int64_t d) { return json{{"n_heads", std::max<int64_t>(1, d / 64)}}; };
  // fla's naive_recurrent_gla: q, k, v, g [B, T, H, D] (q scaled by dk^-1/2 inside), S0 [B, H, dk, dv].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>&) {
    auto tr = [&](const char* n) { return in.at(n).transpose(1, 2); };
    auto q = tr("q");
    auto [o, S] = gla_chunked(q / std::sqrt(static_cast<double>(q.size(-1))), tr("k"), tr("v"), tr("g"), in.at("S0"), 8);
    return OpTesting::Tensors{{"o", o.transpose(1, 2)}, {"state", S}};
  };
  return k;
}

}  // namespace flashnas
