#include "supernet/ops/ssd.h"

#include <torch/nn/functional/padding.h>

#include <limits>

#include "supernet/rms_norm.h"

namespace flashnas {

torch::Tensor segsum(const torch::Tensor& a) {
  const int64_t L = a.size(-1);
  auto ones = torch::ones({L, L}, torch::TensorOptions().dtype(torch::kBool).device(a.device()));
  auto sizes = a.sizes().vec();
  sizes.push_back(L);
  // rep[..., m, j] = a[..., m]; keep only m > j, then cumsum over m.
  auto rep = a.unsqueeze(-1).expand(sizes).masked_fill(torch::tril(ones, -1).logical_not(), 0.0);
  auto cs = rep.cumsum(-2);  // cs[..., i, j] = sum_{j < m <= i} a[m]
  return cs.masked_fill(torch::tril(ones, 0).logical_not(), -std::numeric_limits<double>::infinity());
}

std::pair<torch::Tensor, torch::Tensor> ssd_chunked(const torch::Tensor& x_in, const torch::Tensor& a_in,
                                                    const torch::Tensor& B_in, const torch::Tensor& C_in,
                                                    const torch::Tensor& h0, int64_t Q) {
  namespace F = torch::nn::functional;
  const auto acc = accum_dtype(x_in.scalar_type());
  const int64_t Bsz = x_in.size(0), T = x_in.size(1), H = x_in.size(2), P = x_in.size(3);
  const int64_t G = B_in.size(2), N = B_in.size(3), R = H / G;  // R heads per group
  TORCH_CHECK(H % G == 0, "ssd_chunked: groups must divide heads");
  const int64_t pad = (Q - T % Q) % Q, Tp = T + pad, nc = Tp / Q;
  // Padding tokens are no-ops: x = 0 and a = 0 (decay 1) leave the state unchanged.
  auto padT = [&](const torch::Tensor& t) {
    auto f = t.to(acc);
    if (pad == 0) return f;
    // F::pad takes (left, right) pairs from the last dim backwards; T is dim 1.
    std::vector<int64_t> p(2 * (t.dim() - 2), 0);
    p.push_back(0);
    p.push_back(pad);
    return F::pad(f, F::PadFuncOptions(p));
  };
  // Layout [B, G, R, c, l, ...]: heads split into (group, head within group).
  auto x = padT(x_in).view({Bsz, nc, Q, G, R, P}).permute({0, 3, 4, 1, 2, 5});  // [B, G, R, c, l, P]
  auto a = padT(a_in).view({Bsz, nc, Q, G, R}).permute({0, 3, 4, 1, 2});        // [B, G, R, c, l]
  auto Bm = padT(B_in).view({Bsz, nc, Q, G, 1, N}).permute({0, 3, 4, 1, 2, 5}); // [B, G, 1, c, l, N]
  auto Cm = padT(C_in).view({Bsz, nc, Q, G, 1, N}).permute({0, 3, 4, 1, 2, 5});

  auto Acs = a.cumsum(-1);                                                        // [B, G, R, c, l]
  auto ones = torch::ones({Q, Q}, torch::TensorOptions().dtype(torch::kBool).device(x.device()));
  auto Lmat = (Acs.unsqueeze(-1) - Acs.unsqueeze(-2))
                  .masked_fill(torch::tril(ones).logical_not(), -std::numeric_limits<double>::infinity())
                  .exp();                                                         // [B, G, R, c, l, l]
  auto CB = torch::matmul(Cm, Bm.transpose(-1, -2));                              // [B, G, 1, c, l, l], once per group
  auto y_diag = torch::matmul(CB * Lmat, x);                                      // [B, G, R, c, l, P]
  // Chunk-local end states: sum_s exp(Acs_last - Acs_s) x_s B_s^T.
  auto decay_to_end = (Acs.narrow(-1, Q - 1, 1) - Acs).exp();                     // [B, G, R, c, l]
  auto states = torch::matmul((x * decay_to_end.unsqueeze(-1)).transpose(-1, -2), Bm);  // [B, G, R, c, P, N]
  auto init = h0.defined() ? h0.to(acc).view({Bsz, G, R, P, N}) : torch::zeros({Bsz, G, R, P, N}, x.options());
  states = torch::cat({init.unsqueeze(3), states}, 3);                            // [B, G, R, c + 1, P, N]
  // State passing: H_c = exp(total_c) H_{c-1} + S_c, as one product with exp(segsum(totals)).
  auto totals = F::pad(Acs.select(-1, Q - 1), F::PadFuncOptions({1, 0}));         // [B, G, R, c + 1]
  auto decay_chunk = segsum(totals).exp();                                        // [B, G, R, c + 1, c + 1]
  auto passed = torch::matmul(decay_chunk, states.reshape({Bsz, G, R, nc + 1, P * N}))
                    .view({Bsz, G, R, nc + 1, P, N});
  auto h_in = passed.narrow(3, 0, nc);                                            // state entering each chunk
  auto final_state = passed.select(3, nc).reshape({Bsz, H, P, N});
  auto y_off = torch::matmul(Cm, h_in.transpose(-1, -2)) * Acs.exp().unsqueeze(-1);  // [B, G, R, c, l, P]
  auto y = (y_diag + y_off).permute({0, 3, 4, 1, 2, 5}).reshape({Bsz, Tp, H, P}).narrow(1, 0, T);
  return {y, final_state};
}

std::pair<torch::Tensor, torch::Tensor> ssd_recurrent(const torch::Tensor& x, const torch::Tensor& a,
                                                      const torch::Tensor& Bm, const torch::Tensor& Cm,
                                                      const torch::Tensor& h0) {
  const auto acc = accum_dtype(x.scalar_type());
  const int64_t Bsz = x.size(0), T = x.size(1), H = x.size(2), P = x.size(3), N = Bm.size(3);
  const int64_t R = H / Bm.size(2);
  auto h = h0.defined() ? h0.to(acc).clone() : torch::zeros({Bsz, H, P, N}, x.options().dtype(acc));
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < T; ++t) {
    auto xt = x.select(1, t).to(acc);
    auto bt = Bm.select(1, t).to(acc).repeat_interleave(R, 1), ct = Cm.select(1, t).to(acc).repeat_interleave(R, 1);
    auto decay = a.select(1, t).to(acc).exp();  // [B, H]
    h = h * decay.unsqueeze(-1).unsqueeze(-1) + xt.unsqueeze(-1) * bt.unsqueeze(-2);
    ys.push_back(torch::matmul(h, ct.unsqueeze(-1)).squeeze(-1));  // [B, H, P]
  }
  return {torch::stack(ys, 1), h};
}

}  // namespace flashnas
