#include "supernet/ops/swa.h"

#include "supernet/ops/attention_core.h"
#include "supernet/ops/init.h"
#include "supernet/ops/rope.h"

namespace flashnas {

SwaConfig SwaConfig::from_json(const json& hp) {
  SwaConfig c;
  c.attn = AttnConfig::from_json(hp);
  c.window = hp.at("window").get<int64_t>();
  return c;
}

SwaOp::SwaOp(const SwaConfig& cfg, int64_t d_model) : cfg_(cfg) {
  const int64_t q_dim = cfg.attn.n_heads * cfg.attn.head_dim, kv_dim = cfg.attn.n_kv_heads * cfg.attn.head_dim;
  q_proj = register_module("q_proj", linear_no_bias(d_model, q_dim));
  k_proj = register_module("k_proj", linear_no_bias(d_model, kv_dim));
  v_proj = register_module("v_proj", linear_no_bias(d_model, kv_dim));
  o_proj = register_module("o_proj", linear_no_bias(q_dim, d_model));
}

namespace {
// Slots of absolute positions [p0, p0 + n) in a ring of W, as an index tensor.
torch::Tensor ring_slots(int64_t p0, int64_t n, int64_t W, torch::Device dev) {
  return torch::arange(p0, p0 + n, torch::TensorOptions().dtype(torch::kLong).device(dev)).remainder(W);
}
}  // namespace

torch::Tensor SwaOp::forward(const torch::Tensor& x, OpState* state) {
  const auto& a = cfg_.attn;
  const int64_t B = x.size(0), T = x.size(1), W = cfg_.window;
  auto q = q_proj->forward(x).view({B, T, a.n_heads, a.head_dim}).transpose(1, 2);
  auto k = k_proj->forward(x).view({B, T, a.n_kv_heads, a.head_dim}).transpose(1, 2);
  auto v = v_proj->forward(x).view({B, T, a.n_kv_heads, a.head_dim}).transpose(1, 2);
  const int64_t pos0 = state ? state->pos : 0;
  q = apply_rope(q, pos0, a.rope_theta);
  k = apply_rope(k, pos0, a.rope_theta);
  torch::Tensor keys = k, vals = v;
  int64_t k_pos0 = pos0;
  if (state) {
    auto& kr = state->buffers.at("k");
    auto& vr = state->buffers.at("v");
    // The last min(pos0, W - 1) cached keys, in chronological order, precede the new ones.
    const int64_t n_old = std::min(pos0, W - 1);
    if (n_old > 0) {
      auto idx = ring_slots(pos0 - n_old, n_old, W, x.device());
      keys = torch::cat({kr.index_select(2, idx), k}, 2);
      vals = torch::cat({vr.index_select(2, idx), v}, 2);
      k_pos0 = pos0 - n_old;
    }
    // Keep the last min(T, W) new keys.
    const int64_t n_new = std::min(T, W);
    auto idx = ring_slots(pos0 + T - n_new, n_new, W, x.device());
    kr.index_copy_(2, idx, k.narrow(2, T - n_new, n_new));
    vr.index_copy_(2, idx, v.narrow(2, T - n_new, n_new));
    state->pos = pos0 + T;
  }
  auto o = attention(q, keys, vals, pos0, k_pos0, W);
  return o_proj->forward(o.transpose(1, 2).reshape({B, T, a.n_heads * a.head_dim}));
}

torch::Tensor SwaOp::step(const torch::Tensor& x, OpState& state) {
  if (state.pos_dev.defined()) {
    // Graph-safe: the ring slot pos_dev mod W. Slot s holds a visible key once
    // written (s <= pos_dev); after the ring wraps every slot holds one of the
    // W most recent keys, all visible.
    return attention_step_on_device(cfg_.attn, q_proj, k_proj, v_proj, o_proj, x, state,
                                    state.pos_dev.remainder(cfg_.window));
  }
  const auto& a = cfg_.attn;
  const int64_t B = x.size(0), W = cfg_.window, t = state.pos;
  auto q = apply_rope(q_proj->forward(x).view({B, 1, a.n_heads, a.head_dim}).transpose(1, 2), t, a.rope_theta);
  auto k = apply_rope(k_proj->forward(x).view({B, 1, a.n_kv_heads, a.head_dim}).transpose(1, 2), t, a.rope_theta);
  auto v = v_proj->forward(x).view({B, 1, a.n_kv_heads, a.head_dim}).transpose(1, 2);
  auto& kr = state.buffers.at("k");
  auto& vr = state.buffers.at("v");
  kr.narrow(2, t % W, 1).copy_(k);
  vr.narrow(2, t % W, 1).copy_(v);
  state.pos = t + 1;
  torch::Tensor o;
  if (t + 1 >= W) {
    // Ring full: every slot holds one of the W visible keys. Softmax ignores
    // key order, so the slots are passed as if contiguous, all visible.
    o = attention(q, kr, vr, t, t - W + 1, 0);
  } else {
    // Not wrapped yet: slots 0..t hold positions 0..t in order.
    o = attention(q, kr.narrow(2, 0, t + 1), vr.narrow(2, 0, t + 1), t, 0, 0);
  }
  return o_proj->forward(o.transpose(1, 2).reshape({B, a.n_heads * a.head_dim}));
}

OpState SwaOp::init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const {
  OpState s;
  s.max_context = max_context;
  auto opts = torch::TensorOptions().dtype(dtype).device(q_proj->weight.device());
  s.buffers["k"] = torch::zeros({batch, cfg_.attn.n_kv_heads, cfg_.window, cfg_.attn.head_dim}, opts);
  s.buffers["v"] = torch::zeros({batch, cfg_.attn.n_kv_heads, cfg_.window, cfg_.attn.head_dim}, opts);
  return s;
}

OpKind swa_kind() {
  OpKind k = attn_kind();  // same projections, heads, validation and residual roles
  const auto attn_cost = k.cost;
  const auto attn_summary = k.summary;
  k.name = "swa";
  k.transformers = true;
  k.description = "sliding-window attention (a query sees W keys incl. itself), GQA, RoPE; ring-buffer cache of W";
  k.fields.push_back(int_field("window", "W, keys a query sees (itself included)", 512));
  k.testing.cases = {json{{"n_heads", 4}, {"n_kv_heads", 2}, {"window", 5}}};
  k.testing.bench = [](int64_t d) {
    const int64_t heads = std::max<int64_t>(1, d / 64);
    return json{{"n_heads", heads}, {"n_kv_heads", std::max<int64_t>(1, heads / 4)}, {"window", 512}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<SwaOp>(SwaConfig::from_json(hp), dims.d_model);
  };
  k.cost = [attn_cost](const json& hp, const ModelDims& dims) {
    OpCost cost = attn_cost(hp, dims);
    const AttnConfig a = AttnConfig::from_json(hp);
    const int64_t W = hp.at("window").get<int64_t>();
    const double per_key = 4.0 * static_cast<double>(a.n_heads * a.head_dim);
    cost.core_flops_decode = [per_key, W](int64_t t) { return per_key * static_cast<double>(std::min(t, W)); };
    // Mean over i = 1..T of min(i, W) keys.
    cost.core_flops_prefill = [per_key, W](int64_t T) {
      const double w = static_cast<double>(std::min(T, W)), n = static_cast<double>(T);
      const double sum = w * (w + 1) / 2 + (n - w) * static_cast<double>(W);
      return per_key * sum / n;
    };
    const int64_t per_token = 2 * a.n_kv_heads * a.head_dim;
    cost.state_bytes = [per_token, W](int64_t t, int64_t act_bytes) {
      (void)t;  // the ring is preallocated at W entries whatever the context
      return mul_saturated(per_token, W, act_bytes);
    };
    return cost;
  };
  k.summary = [attn_summary](const json& hp) {
    return attn_summary(hp) + " W=" + std::to_string(hp.at("window").get<int64_t>());
  };
  return k;
}

}  // namespace flashnas
