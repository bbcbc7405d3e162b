#include "supernet/ops/attention_core.h"

#include <ATen/ops/scaled_dot_product_attention.h>

#include <cmath>

#include "common/error.h"
#include "supernet/rms_norm.h"

namespace flashnas {
namespace {

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_pos0,
                  int64_t k_pos0) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be [B, H, T, dh]");
  TORCH_CHECK(k.sizes() == v.sizes(), "attention: k and v shapes differ");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "attention: query heads must be a multiple of kv heads");
  // The last query must see the last key (no keys from its future are passed).
  TORCH_CHECK(k_pos0 + k.size(2) <= q_pos0 + q.size(2), "attention: keys extend past the last query");
}

// Visibility mask [Tq, Tk], true where key j is visible to query i.
torch::Tensor visible_mask(int64_t Tq, int64_t Tk, int64_t q_pos0, int64_t k_pos0, int64_t window,
                           torch::Device dev) {
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(dev);
  auto qpos = torch::arange(q_pos0, q_pos0 + Tq, opts).unsqueeze(1);
  auto kpos = torch::arange(k_pos0, k_pos0 + Tk, opts).unsqueeze(0);
  auto m = kpos <= qpos;
  if (window > 0) m = m & ((qpos - kpos) < window);
  return m;
}

}  // namespace

torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  int64_t q_pos0, int64_t k_pos0, int64_t window) {
  check_shapes(q, k, v, q_pos0, k_pos0);
  const int64_t Tq = q.size(2), Tk = k.size(2), dh = q.size(3), groups = q.size(1) / k.size(1);
  const auto acc = accum_dtype(q.scalar_type());
  const auto kr = k.repeat_interleave(groups, 1).to(acc);
  const auto vr = v.repeat_interleave(groups, 1).to(acc);
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh));
  constexpr int64_t kBlock = 256;
  std::vector<torch::Tensor> outs;
  for (int64_t s = 0; s < Tq; s += kBlock) {
    const int64_t n = std::min(kBlock, Tq - s);
    auto qb = q.narrow(2, s, n).to(acc);
    auto scores = torch::matmul(qb, kr.transpose(-1, -2)) * scale;  // [B, Hq, n, Tk]
    auto mask = visible_mask(n, Tk, q_pos0 + s, k_pos0, window, q.device());
    scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
    outs.push_back(torch::matmul(torch::softmax(scores, -1), vr));
  }
  return torch::cat(outs, 2).to(q.scalar_type());
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_pos0,
                        int64_t k_pos0, int64_t window) {
  check_shapes(q, k, v, q_pos0, k_pos0);
  const int64_t Tq = q.size(2), Tk = k.size(2);
  const bool gqa = q.size(1) != k.size(1);
  const bool aligned = (q_pos0 == k_pos0) && (Tq == Tk);
  // Window inactive when no query can reach further back than `window` keys.
  const bool window_inactive = window == 0 || (q_pos0 + Tq - 1) - k_pos0 < window;
  // Every key visible to every query: the first query is at or past the last key.
  const bool all_visible = window_inactive && q_pos0 >= k_pos0 + Tk - 1;
  if (all_visible) {
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, std::nullopt, gqa);
  }
  if (aligned && window_inactive) {
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, std::nullopt, gqa);
  }
  auto mask = visible_mask(Tq, Tk, q_pos0, k_pos0, window, q.device());
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, std::nullopt, gqa);
}

torch::Tensor attention_visible(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& visible) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be [B, H, T, dh]");
  TORCH_CHECK(k.sizes() == v.sizes(), "attention: k and v shapes differ");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "attention: query heads must be a multiple of kv heads");
  TORCH_CHECK(visible.dim() == 1 && visible.size(0) == k.size(2) && visible.scalar_type() == torch::kBool,
              "attention_visible: visible must be bool [Tk]");
  const bool gqa = q.size(1) != k.size(1);
  return at::scaled_dot_product_attention(q, k, v, visible.view({1, -1}), 0.0, false, std::nullopt, gqa);
}

}  // namespace flashnas
