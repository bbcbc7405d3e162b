#include "supernet/ops/rwkv7.h"

#include <torch/nn/functional/padding.h>

#include <cmath>
#include <limits>

#include "supernet/ops/init.h"
#include "supernet/rms_norm.h"

namespace flashnas {
namespace {

// exp(-1/2): the largest magnitude of the log decay (fla's RWKV-7 layer).
constexpr double kMaxLogDecay = 0.6065306597126334;

// lora(x) = up(act(down(x))): fla's LoRA, named lora.0 (down) and lora.2 (up).
std::pair<torch::nn::Linear, torch::nn::Linear> make_lora(torch::nn::Module& parent, const std::string& name, int64_t d,
                                                          int64_t rank, int64_t out, bool bias) {
  auto m = parent.register_module(name, std::make_shared<torch::nn::Module>());
  auto lora = m->register_module("lora", std::make_shared<torch::nn::Module>());
  auto down = lora->register_module("0", linear_no_bias(d, rank));
  auto up = lora->register_module("2", torch::nn::Linear(torch::nn::LinearOptions(rank, out).bias(bias)));
  torch::NoGradGuard no_grad;
  up->weight.normal_(0, kInitStd);
  return {down, up};
}

}  // namespace

Rwkv7Config Rwkv7Config::from_json(const json& hp) {
  Rwkv7Config c;
  c.n_heads = hp.at("n_heads").get<int64_t>();
  c.head_dim = hp.at("head_dim").get<int64_t>();
  c.decay_rank = hp.at("decay_rank").get<int64_t>();
  c.a_rank = hp.at("a_rank").get<int64_t>();
  c.gate_rank = hp.at("gate_rank").get<int64_t>();
  c.chunk_size = hp.at("chunk_size").get<int64_t>();
  c.norm_eps = hp.at("norm_eps").get<double>();
  return c;
}

std::pair<torch::Tensor, torch::Tensor> dplr_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                     const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& w,
                                                     const torch::Tensor& S0, int64_t chunk) {
  namespace F = torch::nn::functional;
  const auto acc = accum_dtype(q.scalar_type());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), N = q.size(3), Nv = v.size(3);
  const int64_t C = chunk, n = (T + C - 1) / C, pad = n * C - T;
  // Padded positions: k = v = a = b = 0 (no contribution), w = 0 (no decay).
  auto chunks = [&](const torch::Tensor& t) {
    auto u = t.to(acc);
    if (pad > 0) u = F::pad(u, F::PadFuncOptions({0, 0, 0, pad}));
    return u.reshape({B, H, n, C, u.size(-1)});
  };
  auto qc = chunks(q), kc = chunks(k), vc = chunks(v), ac = chunks(a), bc = chunks(b);
  auto wc = chunks(w);
  auto G = wc.cumsum(3);  // [B, H, n, C, N], non-increasing along the chunk
  auto Gx = G - wc;       // the decay before position t's own
  const double ninf = -std::numeric_limits<double>::infinity();
  auto bools = torch::TensorOptions().dtype(torch::kBool).device(q.device());
  auto above = torch::ones({C, C}, bools).triu(1).view({C, C, 1});        // s > t
  auto not_below = torch::ones({C, C}, bools).triu(0).view({C, C, 1});    // s >= t
  // Pairwise decays [B, H, n, C(t), C(s), N]: exp(G_t - G_s) for s <= t, exp(G'_t - G_s) for s < t.
  auto incl = (G.unsqueeze(4) - G.unsqueeze(3)).masked_fill(above, ninf).exp();
  auto strict = (Gx.unsqueeze(4) - G.unsqueeze(3)).masked_fill(not_below, ninf).exp();
  auto pair = [](const torch::Tensor& x, const torch::Tensor& dec, const torch::Tensor& y) {
    return (x.unsqueeze(4) * dec * y.unsqueeze(3)).sum(-1);  // [B, H, n, C, C]
  };
  auto A_qk = pair(qc, incl, kc), A_qb = pair(qc, incl, bc);
  auto A_ak = pair(ac, strict, kc), A_ab = pair(ac, strict, bc);
  // (I - A_ab) u = A_ak v + W S_0: solved for both right-hand sides at once.
  auto IA = torch::eye(C, qc.options()) - A_ab;
  auto sol = torch::linalg_solve_triangular(IA, torch::cat({torch::matmul(A_ak, vc), ac * Gx.exp()}, -1),
                                            /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
  auto U0 = sol.narrow(-1, 0, Nv), Wp = sol.narrow(-1, Nv, N);
  auto intra = torch::matmul(A_qk, vc);                     // [B, H, n, C, Nv]
  auto q_decayed = qc * G.exp();                            // decay from the chunk start
  auto last = G.select(3, C - 1);                           // [B, H, n, N]
  auto to_end = (last.unsqueeze(3) - G).exp();              // decay to the chunk end
  auto k_end = kc * to_end, b_end = bc * to_end;
  torch::Tensor S = S0.defined() ? S0.to(acc) : torch::zeros({B, H, N, Nv}, qc.options());
  // Unbound once (see delta_rule_chunked: per-chunk select() costs autograd a full-size gradient each).
  const auto U0s = U0.unbind(2), Wps = Wp.unbind(2), intras = intra.unbind(2), A_qbs = A_qb.unbind(2);
  const auto qds = q_decayed.unbind(2), lasts = last.unbind(2), kes = k_end.unbind(2), bes = b_end.unbind(2);
  const auto vs = vc.unbind(2);
  std::vector<torch::Tensor> out;
  out.reserve(size_t(n));
  for (int64_t c = 0; c < n; ++c) {
    auto u = U0s[c] + torch::matmul(Wps[c], S);  // [B, H, C, Nv]: alpha_t^T S_{t-1}
    out.push_back(intras[c] + torch::matmul(A_qbs[c], u) + torch::matmul(qds[c], S));
    S = lasts[c].exp().unsqueeze(-1) * S + torch::matmul(kes[c].transpose(-1, -2), vs[c]) +
        torch::matmul(bes[c].transpose(-1, -2), u);
  }
  auto o = torch::stack(out, 2).reshape({B, H, n * C, Nv}).narrow(2, 0, T);
  return {o, S};
}

torch::Tensor dplr_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& a,
                        const torch::Tensor& b, const torch::Tensor& w, torch::Tensor& S) {
  const auto acc = S.scalar_type();
  auto u = torch::matmul(a.to(acc).unsqueeze(-2), S);  // alpha^T S: [B, H, 1, Nv]
  auto s = w.to(acc).exp().unsqueeze(-1) * S + b.to(acc).unsqueeze(-1) * u + k.to(acc).unsqueeze(-1) * v.to(acc).unsqueeze(-2);
  S.copy_(s);
  return torch::matmul(q.to(acc).unsqueeze(-2), s).squeeze(-2);
}

Rwkv7Op::Rwkv7Op(const Rwkv7Config& cfg, int64_t d) : cfg_(cfg), d_(d) {
  const int64_t H = cfg.n_heads, N = cfg.head_dim, D = H * N;
  r_proj = register_module("r_proj", linear_no_bias(d, D));
  k_proj = register_module("k_proj", linear_no_bias(d, D));
  v_proj = register_module("v_proj", linear_no_bias(d, D));
  o_proj = register_module("o_proj", linear_no_bias(D, d));
  std::tie(w_down, w_up) = make_lora(*this, "w_lora", d, cfg.decay_rank, D, true);
  std::tie(a_down, a_up) = make_lora(*this, "a_lora", d, cfg.a_rank, D, true);
  std::tie(g_down, g_up) = make_lora(*this, "g_lora", d, cfg.gate_rank, D, false);
  // fla's initialisation of its first layer: token-shift mixes ramping over
  // the channels, decays spread from fast to slow (zig-zag within a head).
  auto ramp = torch::arange(d, torch::kDouble) / double(d);
  auto mixing = [&](const char* name, double p) { return register_parameter(name, (1.0 - ramp.pow(p)).to(torch::kFloat)); };
  x_r = mixing("x_r", 0.2);
  x_w = mixing("x_w", 0.9);
  x_k = mixing("x_k", 0.7);
  x_v = mixing("x_v", 0.7);
  x_a = mixing("x_a", 0.9);
  x_g = mixing("x_g", 0.2);
  auto idx = torch::arange(D, torch::kDouble);
  auto linear = idx / double(std::max<int64_t>(1, D - 1)) - 0.5;
  const double half = std::max(0.5, (double(N) - 1) / 2);
  auto zig = (idx.remainder(double(N)) - (double(N) - 1) / 2) / half;
  zig = zig * zig.abs();
  k_k = register_parameter("k_k", (0.71 - 0.1 * linear).to(torch::kFloat));
  k_a = register_parameter("k_a", torch::full({D}, 1.02));
  r_k = register_parameter("r_k", torch::full({H, N}, -0.04));
  auto norm = register_module("g_norm", std::make_shared<torch::nn::Module>());
  g_norm_weight = norm->register_parameter("weight", torch::ones({D}));
  g_norm_bias = norm->register_parameter("bias", torch::zeros({D}));
  torch::NoGradGuard no_grad;
  w_up->bias.copy_(-6.0 + 6.0 * (linear + 0.5) + 0.5 + 2.5 * zig);
  a_up->bias.copy_(-0.19 + 0.3 * zig + 0.4 * linear);
}

Rwkv7Op::Mixed Rwkv7Op::mix(const torch::Tensor& x, const torch::Tensor& prev) {
  const auto acc = accum_dtype(x.scalar_type());
  const auto dt = x.scalar_type();
  auto delta = prev - x;
  auto shifted = [&](const torch::Tensor& mu) { return x + delta * mu.to(dt); };
  auto heads = [&](const torch::Tensor& t) {
    auto s = t.sizes().vec();
    s.back() = cfg_.n_heads;
    s.push_back(cfg_.head_dim);
    return t.to(acc).reshape(s);
  };
  Mixed m;
  auto xv = shifted(x_v);
  m.r = heads(r_proj->forward(shifted(x_r)));
  m.w = heads(-kMaxLogDecay * torch::sigmoid(w_up->forward(torch::tanh(w_down->forward(shifted(x_w)))).to(acc)));
  auto k = heads(k_proj->forward(shifted(x_k)));
  m.v = heads(v_proj->forward(xv));
  auto a = heads(torch::sigmoid(a_up->forward(a_down->forward(shifted(x_a))).to(acc)));
  m.g = g_up->forward(torch::sigmoid(g_down->forward(shifted(x_g))));
  auto kk = k * heads(k_k);
  kk = kk / kk.norm(2, -1, true).clamp_min(1e-12);  // F.normalize
  m.k = k * (1 + (a - 1) * heads(k_a));
  m.a = -kk;
  m.b = kk * a;
  return m;
}

torch::Tensor Rwkv7Op::output(const torch::Tensor& o, const Mixed& m, const torch::Tensor& x) {
  const auto acc = o.scalar_type();
  // GroupNorm with one group per head (biased variance), then the per-channel affine.
  auto mean = o.mean(-1, true);
  auto var = (o - mean).pow(2).mean(-1, true);
  auto y = (o - mean) * torch::rsqrt(var + double(cfg_.head_dim) * cfg_.norm_eps);
  auto flat = x.sizes().vec();
  flat.back() = cfg_.n_heads * cfg_.head_dim;
  y = y.reshape(flat) * g_norm_weight.to(acc) + g_norm_bias.to(acc);
  // The per-head bonus of the current token: (sum_n r k r_k) v.
  auto bonus = (m.r * m.k * r_k.to(acc)).sum(-1, true) * m.v;
  y = (y + bonus.reshape(flat)) * m.g.to(acc);
  return o_proj->forward(y.to(x.scalar_type()));
}

torch::Tensor Rwkv7Op::forward(const torch::Tensor& x, OpState* state) {
  // prev[t] = x[t-1]; before position 0, the state's last input (or zeros).
  namespace F = torch::nn::functional;
  auto prev = F::pad(x, F::PadFuncOptions({0, 0, 1, 0})).narrow(1, 0, x.size(1));
  if (state) prev.select(1, 0).copy_(state->buffers.at("shift"));
  Mixed m = mix(x, prev);  // [B, T, H, N]
  auto tr = [](const torch::Tensor& t) { return t.transpose(1, 2); };
  torch::Tensor S0 = state ? state->buffers.at("S") : torch::Tensor();
  auto [o, S] = dplr_chunked(tr(m.r), tr(m.k), tr(m.v), tr(m.a), tr(m.b), tr(m.w), S0, cfg_.chunk_size);
  if (state) {
    state->buffers.at("S").copy_(S);
    state->buffers.at("shift").copy_(x.select(1, x.size(1) - 1));
    state->pos += x.size(1);
  }
  return output(o.transpose(1, 2), m, x);
}

torch::Tensor Rwkv7Op::step(const torch::Tensor& x, OpState& state) {
  torch::Tensor& shift = state.buffers.at("shift");
  Mixed m = mix(x, shift.to(x.scalar_type()));  // [B, H, N]
  auto o = dplr_step(m.r, m.k, m.v, m.a, m.b, m.w, state.buffers.at("S"));
  shift.copy_(x);
  state.pos += 1;
  return output(o, m, x);
}

OpState Rwkv7Op::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  const auto dev = g_norm_weight.device();
  s.buffers["S"] = torch::zeros({batch, cfg_.n_heads, cfg_.head_dim, cfg_.head_dim},
                                torch::TensorOptions().dtype(accum_dtype(dtype)).device(dev));
  s.buffers["shift"] = torch::zeros({batch, d_}, torch::TensorOptions().dtype(dtype).device(dev));
  return s;
}

OpKind rwkv7_kind() {
  OpKind k;
  k.name = "rwkv7";
  k.transformers = true;
  k.description =
      "RWKV-7 time mixing (generalised delta rule, vector decay and learning rate; chunked; [heads, N, N] state, flat in context)";
  // fla's default low-rank sizes: max(32, 32 * round(f * sqrt(d_model) * scale / 32)).
  auto rank = [](double f, bool by_head) {
    return [f, by_head](const json& hp, const ModelDims& dims, FieldReader&) {
      const double scale = by_head ? hp["head_dim"].get<double>() / 64.0 : 1.0;
      const double r = std::round(f * std::sqrt(double(dims.d_model)) * scale / 32.0) * 32.0;
      return std::max<int64_t>(32, static_cast<int64_t>(r));
    };
  };
  k.fields = {
      int_field("n_heads", "heads H", 4),
      int_field("head_dim", "N, key and value width per head", "d_model / n_heads",
                [](const json& hp, const ModelDims& dims, FieldReader& f) {
                  const int64_t H = hp["n_heads"], D = dims.d_model;
                  if (D % H != 0) {
                    f.fail("n_heads", "must divide d_model (" + std::to_string(D) + ") when head_dim is not given, got " +
                                          std::to_string(H));
                  }
                  return D / H;
                }),
      int_field("decay_rank", "Rw, rank of the decay LoRA", "max(32, 2.5 sqrt(d_model) head_dim / 64, to 32s) (fla)",
                rank(2.5, true)),
      int_field("a_rank", "Ra, rank of the learning-rate LoRA", "max(32, 2.5 sqrt(d_model) head_dim / 64, to 32s) (fla)",
                rank(2.5, true)),
      int_field("gate_rank", "Rg, rank of the output-gate LoRA", "max(32, 5 sqrt(d_model), to 32s) (fla)", rank(5.0, false)),
      int_field("chunk_size", "C, chunk length of the chunked forward (does not change results)", 16),
      number_field("norm_eps", "epsilon of the per-head GroupNorm, times head_dim", 1e-5),
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<Rwkv7Op>(Rwkv7Config::from_json(hp), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const Rwkv7Config c = Rwkv7Config::from_json(hp);
    const int64_t d = dims.d_model, H = c.n_heads, N = c.head_dim, D = H * N;
    const int64_t matrices = 4 * d * D + (c.decay_rank + c.a_rank + c.gate_rank) * (d + D);
    OpCost cost;
    cost.params = matrices + 6 * d + 2 * D /*lora biases*/ + 2 * D /*k_k, k_a*/ + D /*r_k*/ + 2 * D /*g_norm*/;
    cost.proj_flops_per_token = 2.0 * static_cast<double>(matrices);
    const double per_state = static_cast<double>(H * N * N);
    // Decode: alpha^T S (2), decay, two rank-one updates and their sums (5), readout (2) per state entry.
    cost.core_flops_decode = [per_state](int64_t) { return 9.0 * per_state; };
    // Chunked prefill per token: four pairwise products over the chunk
    // (3 C N each per head), their products with v and u (4 C N), the
    // solve (C^2 / 2 per value column) and the state's readout and update (8 per entry).
    const double C = static_cast<double>(c.chunk_size), Nd = static_cast<double>(N);
    const double prefill = static_cast<double>(H) * C * (12.0 * Nd + 4.0 * Nd + C * Nd / 2.0) + 8.0 * per_state;
    cost.core_flops_prefill = [prefill](int64_t) { return prefill; };
    const int64_t S = H * N * N;
    cost.state_bytes = [S, d](int64_t, int64_t act_bytes) { return S * 4 + d * act_bytes; };
    return cost;
  };
  k.summary = [](const json& hp) {
    return "heads=" + std::to_string(hp.at("n_heads").get<int64_t>()) + " N=" + std::to_string(hp.at("head_dim").get<int64_t>());
  };
  k.residual_roles = [](const json&) {
    return ResidualRoles{{"r_proj.weight", "k_proj.weight", "v_proj.weight", "w_lora.lora.0.weight", "a_lora.lora.0.weight",
                          "g_lora.lora.0.weight"},
                         {"o_proj.weight"}};
  };
  k.testing.cases = {json{{"n_heads", 2}, {"chunk_size", 8}},
                     json{{"n_heads", 4}, {"decay_rank", 4}, {"a_rank", 3}, {"gate_rank", 5}, {"chunk_size", 8}}};
  k.testing.bench = [](int64_t d) { return json{{"n_heads", std::max<int64_t>(1, d / 64)}}; };
  // fla's dplr_recurrence: q, k, v, alpha, beta, gk [B, H, T, N] (q scaled by N^-1/2 inside), S0 [B, H, N, N].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>&) {
    const auto& q = in.at("q");
    auto [o, S] = dplr_chunked(q / std::sqrt(static_cast<double>(q.size(-1))), in.at("k"), in.at("v"), in.at("alpha"),
                               in.at("beta"), in.at("gk"), in.at("S0"), 8);
    return OpTesting::Tensors{{"o", o}, {"state", S}};
  };
  return k;
}

}  // namespace flashnas
