#include "supernet/ops/delta_rule.h"

#include <torch/nn/functional/padding.h>

#include <limits>

#include "supernet/rms_norm.h"

namespace flashnas {

std::pair<torch::Tensor, torch::Tensor> delta_rule_chunked(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                                           const torch::Tensor& v_in, const torch::Tensor& beta_in,
                                                           const torch::Tensor& g_in, const torch::Tensor& S0,
                                                           int64_t C) {
  namespace F = torch::nn::functional;
  const auto acc = accum_dtype(q_in.scalar_type());
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), dk = q_in.size(3), dv = v_in.size(3);
  const int64_t pad = (C - T % C) % C, n = (T + pad) / C;
  // Padding tokens are no-ops: k = v = 0, beta = 0, g = 0.
  auto prep = [&](const torch::Tensor& t, bool has_feature) {
    auto f = t.to(acc);
    if (pad > 0) f = F::pad(f, F::PadFuncOptions(has_feature ? std::vector<int64_t>{0, 0, 0, pad}
                                                             : std::vector<int64_t>{0, pad}));
    return has_feature ? f.view({B, H, n, C, f.size(-1)}) : f.view({B, H, n, C});
  };
  auto q = prep(q_in, true), k = prep(k_in, true), v = prep(v_in, true), beta = prep(beta_in, false);
  auto gamma = g_in.defined() ? prep(g_in, false).cumsum(-1) : torch::zeros({B, H, n, C}, q.options());

  auto ones = torch::ones({C, C}, torch::TensorOptions().dtype(torch::kBool).device(q.device()));
  auto lower = torch::tril(ones, 0);
  // D[i, j] = exp(gamma_i - gamma_j) for j <= i, else 0; masked to -inf before exp.
  auto Dm = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2))
                .masked_fill(lower.logical_not(), -std::numeric_limits<double>::infinity())
                .exp();                                                       // [B, H, n, C, C]
  auto kb = k * beta.unsqueeze(-1);
  auto Nmat = (torch::matmul(kb, k.transpose(-1, -2)) * Dm).tril(-1);       // strictly lower
  auto IN = Nmat + torch::eye(C, q.options());
  auto eg = gamma.exp();
  // One solve for both right-hand sides: U = (I+N)^-1 (beta v), Wy = (I+N)^-1 (beta k exp(gamma)).
  auto UW = torch::linalg_solve_triangular(IN, torch::cat({v * beta.unsqueeze(-1), kb * eg.unsqueeze(-1)}, -1),
                                           /*upper=*/false, /*left=*/true, /*unitriangular=*/true);
  auto U = UW.narrow(-1, 0, dv);    // [B, H, n, C, dv]
  auto Wy = UW.narrow(-1, dv, dk);  // [B, H, n, C, dk]
  auto QK = torch::matmul(q, k.transpose(-1, -2)) * Dm;                    // incl. diagonal
  auto qg = q * eg.unsqueeze(-1);
  auto last = gamma.narrow(-1, C - 1, 1);                                   // [B, H, n, 1]
  auto kdec = k * (last - gamma).exp().unsqueeze(-1);                       // [B, H, n, C, dk]
  auto chunk_decay = last.squeeze(-1).exp();                                // [B, H, n]

  auto S = S0.defined() ? S0.to(acc) : torch::zeros({B, H, dk, dv}, q.options());
  // Unbind once: per-chunk select() would make autograd allocate a full-size
  // zero gradient for every chunk (quadratic in the number of chunks).
  const auto Us = U.unbind(2), Wys = Wy.unbind(2), qgs = qg.unbind(2), QKs = QK.unbind(2), kdecs = kdec.unbind(2);
  const auto decays = chunk_decay.unbind(2);
  std::vector<torch::Tensor> outs;
  outs.reserve(n);
  for (int64_t c = 0; c < n; ++c) {
    auto vnew = Us[c] - torch::matmul(Wys[c], S);                          // [B, H, C, dv]
    outs.push_back(torch::matmul(qgs[c], S) + torch::matmul(QKs[c], vnew));
    S = S * decays[c].unsqueeze(-1).unsqueeze(-1) + torch::matmul(kdecs[c].transpose(-1, -2), vnew);
  }
  auto o = torch::stack(outs, 2).view({B, H, n * C, dv}).narrow(2, 0, T);
  return {o, S};
}

torch::Tensor delta_rule_step(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& beta, const torch::Tensor& g, torch::Tensor& S) {
  const auto acc = S.scalar_type();
  auto kf = k.to(acc), qf = q.to(acc), vf = v.to(acc), bf = beta.to(acc);
  torch::Tensor s = S;
  if (g.defined()) s = s * g.to(acc).exp().unsqueeze(-1).unsqueeze(-1);
  auto pred = torch::matmul(kf.unsqueeze(-2), s).squeeze(-2);               // S^T k: [B, H, dv]
  auto vprime = bf.unsqueeze(-1) * (vf - pred);
  s = s + kf.unsqueeze(-1) * vprime.unsqueeze(-2);
  S.copy_(s);
  return torch::matmul(qf.unsqueeze(-2), s).squeeze(-2);                    // S^T q
}

std::pair<torch::Tensor, torch::Tensor> delta_rule_recurrent(const torch::Tensor& q, const torch::Tensor& k,
                                                             const torch::Tensor& v, const torch::Tensor& beta,
                                                             const torch::Tensor& g, const torch::Tensor& S0) {
  const auto acc = accum_dtype(q.scalar_type());
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), dk = q.size(3), dv = v.size(3);
  auto S = S0.defined() ? S0.to(acc).clone() : torch::zeros({B, H, dk, dv}, q.options().dtype(acc));
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < T; ++t) {
    outs.push_back(delta_rule_step(q.select(2, t), k.select(2, t), v.select(2, t), beta.select(2, t),
                                   g.defined() ? g.select(2, t) : torch::Tensor(), S));
  }
  return {torch::stack(outs, 2), S};
}

}  // namespace flashnas
