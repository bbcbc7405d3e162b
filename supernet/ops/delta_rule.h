// The (gated) delta rule, per head with state S in R^{dk x dv}:
//   S <- exp(g_t) S;  v'_t = beta_t (v_t - S^T k_t);  S <- S + k_t v'_t^T;  o_t = S^T q_t
// (DeltaNet: g = 0; Gated DeltaNet: g_t <= 0 is the log decay.)
//
//   q, k [B, H, T, dk] (already L2-normalised, q scaled)   v [B, H, T, dv]
//   beta [B, H, T]   g [B, H, T] or undefined (no decay)   S0 [B, H, dk, dv] or undefined
//   returns o [B, H, T, dv] and the final state [B, H, dk, dv]
// All arithmetic in float32 (float64 stays float64), whatever the inputs.
#pragma once
#include <torch/types.h>

#include <utility>

namespace flashnas {

// Chunked WY form (chunk C): per chunk, the unit lower-triangular system
// (I + N) is solved once for U and W (triangular solves), the decays are
// exponentials of masked non-positive differences, and only the state is
// passed sequentially between chunks. T need not be a multiple of C.
std::pair<torch::Tensor, torch::Tensor> delta_rule_chunked(const torch::Tensor& q, const torch::Tensor& k,
                                                           const torch::Tensor& v, const torch::Tensor& beta,
                                                           const torch::Tensor& g, const torch::Tensor& S0,
                                                           int64_t chunk);

// Token-by-token reference.
std::pair<torch::Tensor, torch::Tensor> delta_rule_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                                             const torch::Tensor& v, const torch::Tensor& beta,
                                                             const torch::Tensor& g, const torch::Tensor& S0);

// One recurrent step: q, k [B, H, dk], v [B, H, dv], beta [B, H], g [B, H] or
// undefined; S [B, H, dk, dv] updated in place. Returns o [B, H, dv].
torch::Tensor delta_rule_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& beta, const torch::Tensor& g, torch::Tensor& S);

}  // namespace flashnas
