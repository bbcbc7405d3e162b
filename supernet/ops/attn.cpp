#include "supernet/ops/attn.h"

#include <torch/nn/init.h>

#include "common/error.h"
#include "supernet/ops/attention_core.h"
#include "supernet/ops/init.h"
#include "supernet/ops/rope.h"

namespace flashnas {

AttnConfig AttnConfig::from_json(const json& hp) {
  AttnConfig c;
  c.n_heads = hp.at("n_heads").get<int64_t>();
  c.n_kv_heads = hp.at("n_kv_heads").get<int64_t>();
  c.head_dim = hp.at("head_dim").get<int64_t>();
  c.rope_theta = hp.at("rope_theta").get<double>();
  return c;
}

AttnOp::AttnOp(const AttnConfig& cfg, int64_t d_model) : cfg_(cfg), d_model_(d_model) {
  const int64_t q_dim = cfg.n_heads * cfg.head_dim, kv_dim = cfg.n_kv_heads * cfg.head_dim;
  q_proj = register_module("q_proj", linear_no_bias(d_model, q_dim));
  k_proj = register_module("k_proj", linear_no_bias(d_model, kv_dim));
  v_proj = register_module("v_proj", linear_no_bias(d_model, kv_dim));
  o_proj = register_module("o_proj", linear_no_bias(q_dim, d_model));
}

torch::Tensor AttnOp::forward(const torch::Tensor& x, OpState* state) {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.n_heads, Hkv = cfg_.n_kv_heads, dh = cfg_.head_dim;
  auto q = q_proj->forward(x).view({B, T, H, dh}).transpose(1, 2);
  auto k = k_proj->forward(x).view({B, T, Hkv, dh}).transpose(1, 2);
  auto v = v_proj->forward(x).view({B, T, Hkv, dh}).transpose(1, 2);
  const int64_t pos0 = state ? state->pos : 0;
  q = apply_rope(q, pos0, cfg_.rope_theta);
  k = apply_rope(k, pos0, cfg_.rope_theta);
  torch::Tensor o;
  if (state) {
    if (pos0 + T > state->max_context) {
      throw Error("attn: context " + std::to_string(pos0 + T) + " exceeds the cache capacity of " +
                  std::to_string(state->max_context) + " tokens");
    }
    auto& kc = state->buffers.at("k");
    auto& vc = state->buffers.at("v");
    kc.narrow(2, pos0, T).copy_(k);
    vc.narrow(2, pos0, T).copy_(v);
    o = attention(q, kc.narrow(2, 0, pos0 + T), vc.narrow(2, 0, pos0 + T), pos0, 0, /*window=*/0);
    state->pos = pos0 + T;
  } else {
    o = attention(q, k, v, 0, 0, /*window=*/0);
  }
  return o_proj->forward(o.transpose(1, 2).reshape({B, T, H * dh}));
}

torch::Tensor AttnOp::step(const torch::Tensor& x, OpState& state) {
  if (!state.pos_dev.defined()) return forward(x.unsqueeze(1), &state).squeeze(1);
  // Graph-safe: slot pos_dev, the whole cache read with the keys past pos_dev
  // (zeros, or a previous sequence's) masked out.
  return attention_step_on_device(cfg_, q_proj, k_proj, v_proj, o_proj, x, state, state.pos_dev);
}

torch::Tensor attention_step_on_device(const AttnConfig& a, torch::nn::Linear& q_proj, torch::nn::Linear& k_proj,
                                       torch::nn::Linear& v_proj, torch::nn::Linear& o_proj, const torch::Tensor& x,
                                       OpState& state, const torch::Tensor& slot) {
  const int64_t B = x.size(0), H = a.n_heads, Hkv = a.n_kv_heads, dh = a.head_dim;
  const torch::Tensor& p = state.pos_dev;
  auto q = apply_rope(q_proj->forward(x).view({B, 1, H, dh}).transpose(1, 2), p, a.rope_theta);
  auto k = apply_rope(k_proj->forward(x).view({B, 1, Hkv, dh}).transpose(1, 2), p, a.rope_theta);
  auto v = v_proj->forward(x).view({B, 1, Hkv, dh}).transpose(1, 2);
  auto& kc = state.buffers.at("k");
  auto& vc = state.buffers.at("v");
  kc.index_copy_(2, slot, k);
  vc.index_copy_(2, slot, v);
  auto o = attention_visible(q, kc, vc, torch::arange(kc.size(2), p.options()) <= p);
  state.pos += 1;
  return o_proj->forward(o.transpose(1, 2).reshape({B, H * dh}));
}

OpState AttnOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  auto opts = torch::TensorOptions().dtype(dtype).device(q_proj->weight.device());
  s.buffers["k"] = torch::zeros({batch, cfg_.n_kv_heads, max_context, cfg_.head_dim}, opts);
  s.buffers["v"] = torch::zeros({batch, cfg_.n_kv_heads, max_context, cfg_.head_dim}, opts);
  return s;
}

OpKind attn_kind() {
  OpKind k;
  k.name = "attn";
  k.transformers = true;
  k.description = "causal attention, grouped-query heads, RoPE; KV cache grows with context";
  k.fields = {
      int_field("n_heads", "query heads Hq", 8),
      int_field("n_kv_heads", "key/value heads Hkv (must divide n_heads)", "min(2, n_heads)",
                [](const json& hp, const ModelDims&, FieldReader&) { return std::min<int64_t>(2, hp["n_heads"]); }),
      int_field("head_dim", "dh, per head (even, for RoPE)", "d_model / n_heads (n_heads must then divide d_model)",
                [](const json& hp, const ModelDims& dims, FieldReader& f) {
                  const int64_t H = hp["n_heads"];
                  if (dims.d_model % H != 0) {
                    f.fail("n_heads", "must divide d_model (" + std::to_string(dims.d_model) +
                                          ") when head_dim is not given, got " + std::to_string(H));
                  }
                  return dims.d_model / H;
                }),
      number_field("rope_theta", "RoPE base", 10000.0),
  };
  k.check = [](const json& hp, const ModelDims&, FieldReader& f) {
    const int64_t H = hp["n_heads"], Hkv = hp["n_kv_heads"], dh = hp["head_dim"];
    if (H % Hkv != 0) f.fail("n_kv_heads", "must divide n_heads (" + std::to_string(H) + "), got " + std::to_string(Hkv));
    if (dh % 2 != 0) f.fail("head_dim", "must be even for RoPE, got " + std::to_string(dh));
  };
  // fla's naive_parallel_attn: q, k, v [B, T, H, D]; "window" 0 = full causal attention.
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>& meta) {
    auto tr = [&](const char* n) { return in.at(n).transpose(1, 2); };
    const int64_t window = std::stoll(meta.at("window"));
    return OpTesting::Tensors{{"o", attention(tr("q"), tr("k"), tr("v"), 0, 0, window).transpose(1, 2)}};
  };
  k.testing.state = StateKind::cache;
  k.testing.cases = {json{{"n_heads", 4}, {"n_kv_heads", 2}}, json{{"n_heads", 2}, {"n_kv_heads", 2}, {"head_dim", 6}}};
  k.testing.bench = [](int64_t d) {
    const int64_t heads = std::max<int64_t>(1, d / 64);
    return json{{"n_heads", heads}, {"n_kv_heads", std::max<int64_t>(1, heads / 4)}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<AttnOp>(AttnConfig::from_json(hp), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) {
    const AttnConfig c = AttnConfig::from_json(hp);
    OpCost cost;
    cost.params = dims.d_model * c.head_dim * (2 * c.n_heads + 2 * c.n_kv_heads);
    cost.proj_flops_per_token = 2.0 * static_cast<double>(cost.params);
    const double per_key = 4.0 * static_cast<double>(c.n_heads * c.head_dim);  // q.k and p.v, 2 FLOPs each
    cost.core_flops_decode = [per_key](int64_t t) { return per_key * static_cast<double>(t); };
    // Causal prefill: token i sees i keys; the mean over i = 1..T is (T + 1) / 2.
    cost.core_flops_prefill = [per_key](int64_t T) { return per_key * static_cast<double>(T + 1) / 2.0; };
    const int64_t per_token = 2 * c.n_kv_heads * c.head_dim;
    cost.state_bytes = [per_token](int64_t t, int64_t act_bytes) { return mul_saturated(per_token, t, act_bytes); };
    return cost;
  };
  k.summary = [](const json& hp) {
    return "heads=" + std::to_string(hp.at("n_heads").get<int64_t>()) +
           " kv=" + std::to_string(hp.at("n_kv_heads").get<int64_t>()) +
           " dh=" + std::to_string(hp.at("head_dim").get<int64_t>());
  };
  k.residual_roles = [](const json&) { return ResidualRoles{{"q_proj.weight", "k_proj.weight", "v_proj.weight"}, {"o_proj.weight"}}; };
  return k;
}

}  // namespace flashnas
