// The Mamba2 state-space recurrence (SSD), per head with state h in R^{P x N}:
//   h_t = exp(a_t) h_{t-1} + x_t B_t^T        y_t = h_t C_t
// where x_t already carries dt (x_t = dt_t * x_t) and a_t = dt_t * A <= 0.
//
//   x [B, T, H, P]   a [B, T, H]   Bm, Cm [B, T, G, N], G divides H (head h reads group h / (H / G))
//   h0 [B, H, P, N] or undefined (zeros)
//   returns y [B, T, H, P] and the final state [B, H, P, N]
// All arithmetic in float32 (float64 stays float64), whatever the inputs.
#pragma once
#include <torch/types.h>

#include <utility>

namespace flashnas {

// Chunked SSD (chunk length Q): quadratic attention-like form within a chunk,
// with decays exp(Acs_i - Acs_j) masked to zero above the diagonal before the
// exponential (differences of in-chunk cumulative sums: accurate for short
// chunks), and state passing between chunks through the stable segment sum.
// Only exponentials of non-positive sums are ever formed. C.B^T is computed
// once per group. T need not be a multiple of Q.
std::pair<torch::Tensor, torch::Tensor> ssd_chunked(const torch::Tensor& x, const torch::Tensor& a,
                                                    const torch::Tensor& Bm, const torch::Tensor& Cm,
                                                    const torch::Tensor& h0, int64_t chunk);

// Token-by-token reference of the same recurrence.
std::pair<torch::Tensor, torch::Tensor> ssd_recurrent(const torch::Tensor& x, const torch::Tensor& a,
                                                      const torch::Tensor& Bm, const torch::Tensor& Cm,
                                                      const torch::Tensor& h0);

// segsum(a)[..., i, j] = sum_{j < m <= i} a[..., m] for i >= j, -inf above the
// diagonal; computed by a masked cumulative sum (stable), a [..., L] -> [..., L, L].
torch::Tensor segsum(const torch::Tensor& a);

}  // namespace flashnas
