// `rwkv7`: RWKV-7's time mixing ("Goose"), as flash-linear-attention's
// RWKV7Attention layer for its first layer: the generalised delta rule with
// a vector-valued decay and a vector-valued in-context learning rate.
// H heads of width N (keys and values alike), D = H * N.
//
//   token shift:  x'_t = x_{t-1} (x_{-1} = 0, or the state's last input),  xc = x + (x' - x) * x_c
//                 for c in r, w, k, v, a, g (x_c [d], one mixing vector each)
//   r = W_r xr,  k = W_k xk,  v = W_v xv                                    [D]
//   w = -e^{-1/2} sigmoid(lora_w(xw))   log decay per key channel, in (-0.607, 0)
//   a = sigmoid(lora_a(xa))             in-context learning rate per key channel
//   g = lora_g(xg)                      output gate
//   kk = normalize_per_head(k * k_k),   k <- k * (1 + (a - 1) * k_a)
//   per head, state S in R^{N x N} (key x value):
//     S_t = diag(exp(w_t)) S_{t-1} + beta_t (alpha_t^T S_{t-1}) + k_t v_t^T,  alpha = -kk, beta = kk * a
//     o_t = S_t^T r_t
//   o = GroupNorm_H(o) (eps N * norm_eps);  o = (o + (sum_N r * k * r_k) v) * g;  out = W_o o
// where lora_c(x) = B_c act(A_c x) + b_c (act tanh for w, none for a,
// sigmoid for g, which has no bias).
//
// flashnas operators are layer-local, so the value residual of later RWKV-7
// layers (v mixed with the first layer's v) is not carried: every rwkv7 layer
// is what fla builds for layer 0.
//
// Parameters: x_r, x_w, x_k, x_v, x_a, x_g [d]; k_k, k_a [D]; r_k [H, N];
//   r_proj.weight, k_proj.weight, v_proj.weight [D, d]; o_proj.weight [d, D];
//   w_lora.lora.0.weight [Rw, d], w_lora.lora.2.{weight [D, Rw], bias [D]};
//   a_lora.lora.0.weight [Ra, d], a_lora.lora.2.{weight [D, Ra], bias [D]};
//   g_lora.lora.0.weight [Rg, d], g_lora.lora.2.weight [D, Rg];
//   g_norm.weight, g_norm.bias [D].
// Decode state (OpState::buffers): "S" [B, H, N, N] float32 (float64 for
// float64); "shift" [B, d], the last input, in the activation dtype.
//
// The chunked form (chunk C): within a chunk, with G_t the cumulative log
// decay and G'_t = G_t - w_t, the rows u_t = alpha_t^T S_{t-1} satisfy
//   u = W S_0 + A_ak v + A_ab u,   W_t = alpha_t * exp(G'_t),
//   A_ak[t, s] = sum_n alpha_t exp(G'_t - G_s) k_s,  A_ab likewise with beta_s (s < t),
// one unit-lower-triangular solve per chunk (independent of S_0, so done for
// all chunks at once); then o_t = (r_t exp(G_t))^T S_0 + sum_{s<=t} A_rk[t, s] v_s
// + A_rb[t, s] u_s, and S passes to the next chunk. Only exponentials of
// non-positive numbers are formed (pairwise differences masked before exp).
#pragma once
#include <torch/nn/modules/linear.h>

#include "supernet/ops/op_kind.h"

namespace flashnas {

struct Rwkv7Config {
  int64_t n_heads = 4;
  int64_t head_dim = 0;     // N
  int64_t decay_rank = 32;  // Rw
  int64_t a_rank = 32;      // Ra
  int64_t gate_rank = 32;   // Rg
  int64_t chunk_size = 16;  // C, for the chunked forward (does not change results)
  double norm_eps = 1e-5;   // the GroupNorm's epsilon is head_dim * norm_eps (fla)

  static Rwkv7Config from_json(const json& hp);  // canonical hyperparameters (see rwkv7_kind's fields)
};

// The diagonal-plus-low-rank recurrence, chunked. q, k, a, b, w [B, H, T, N]
// (w: log decays <= 0; a = alpha, b = beta above), v [B, H, T, Nv], S0
// [B, H, N, Nv] or undefined. No scaling of q. Returns o [B, H, T, Nv] and
// the final state. Arithmetic in float32 (float64 stays float64).
std::pair<torch::Tensor, torch::Tensor> dplr_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                                     const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& w,
                                                     const torch::Tensor& S0, int64_t chunk);
// One step: q, k, a, b, w [B, H, N], v [B, H, Nv]; S [B, H, N, Nv] updated in
// place. Returns o [B, H, Nv].
torch::Tensor dplr_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& a,
                        const torch::Tensor& b, const torch::Tensor& w, torch::Tensor& S);

class Rwkv7Op : public Operator {
 public:
  Rwkv7Op(const Rwkv7Config& cfg, int64_t d_model);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) override;
  torch::Tensor step(const torch::Tensor& x, OpState& state) override;
  OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const override;

  torch::Tensor x_r, x_w, x_k, x_v, x_a, x_g, k_k, k_a, r_k, g_norm_weight, g_norm_bias;
  torch::nn::Linear r_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  torch::nn::Linear w_down{nullptr}, w_up{nullptr}, a_down{nullptr}, a_up{nullptr}, g_down{nullptr}, g_up{nullptr};

 private:
  struct Mixed {
    torch::Tensor r, w, k, v, a, b;  // [..., H, N] in the accumulation dtype; a = alpha, b = beta
    torch::Tensor bonus_k, g;        // k after the learning-rate update; the output gate [..., D]
  };
  // x [..., d] and its shifted copy (the previous token) -> the recurrence's inputs.
  Mixed mix(const torch::Tensor& x, const torch::Tensor& prev);
  torch::Tensor output(const torch::Tensor& o, const Mixed& m, const torch::Tensor& x);  // o [..., H, N] -> [..., d]
  Rwkv7Config cfg_;
  int64_t d_;
};

OpKind rwkv7_kind();

}  // namespace flashnas
