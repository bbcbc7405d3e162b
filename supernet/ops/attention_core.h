// Scaled dot-product attention with grouped-query heads, absolute positions
// and an optional sliding window. Shared by `attn` and `swa`.
//
//   q: [B, Hq, Tq, dh]    k, v: [B, Hkv, Tk, dh]    returns [B, Hq, Tq, dh]
//
// Query head j reads KV head j / (Hq / Hkv) (repeat_interleave semantics).
// Query i has absolute position q_pos0 + i, key j has k_pos0 + j; key j is
// visible to query i iff kpos <= qpos and (window == 0 or qpos - kpos < window),
// i.e. a window of W lets a query see W keys including itself. Every query
// must see at least its own position. Scale is dh^-1/2.
#pragma once
#include <torch/types.h>

#include <cstdint>

namespace flashnas {

// Plain reference: scores and softmax in float32 (float64 for float64 input),
// computed in blocks of queries so the full T x T score matrix is never held.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  int64_t q_pos0, int64_t k_pos0, int64_t window);

// Fast path through LibTorch's fused scaled_dot_product_attention, with the
// same semantics (tested against attention_reference). Used by the model.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t q_pos0,
                        int64_t k_pos0, int64_t window);

// Attention over a preallocated cache whose visible keys are given by a mask
// computed on the device: `visible` bool [Tk], true where key j takes part
// (the same for every query and head). Shape-static whatever the position,
// so a CUDA graph captured once serves every decode step; at least one key
// must be visible. Same grouped-query semantics and scale as above.
torch::Tensor attention_visible(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& visible);

}  // namespace flashnas
