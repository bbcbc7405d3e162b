#include "search/surrogate.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace flashnas {
namespace {

torch::Tensor to_tensor(const Matrix& x) {
  const int64_t n = int64_t(x.size()), d = n ? int64_t(x[0].size()) : 0;
  auto t = torch::empty({n, d}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) a[i][j] = x[size_t(i)][size_t(j)];
  }
  return t;
}

torch::Tensor to_tensor(const std::vector<double>& v) {
  return torch::from_blob(const_cast<double*>(v.data()), {int64_t(v.size())}, torch::kFloat64).clone();
}

std::vector<double> to_vector(const torch::Tensor& t) {
  const auto c = t.contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Matérn 5/2 between the rows of a [m, d] and b [n, d], scaled by `ls` [d].
torch::Tensor matern52(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& ls, const torch::Tensor& signal) {
  const auto as = a / ls, bs = b / ls;
  const auto d2 = (as.pow(2).sum(1, true) + bs.pow(2).sum(1).unsqueeze(0) - 2 * as.matmul(bs.t())).clamp_min(0);
  const auto r = torch::sqrt(d2 + 1e-12);
  const double s5 = std::sqrt(5.0);
  return signal * (1 + s5 * r + (5.0 / 3.0) * d2) * torch::exp(-s5 * r);
}

// Lower Cholesky factor of k + jitter I, raising the jitter until it succeeds.
torch::Tensor cholesky_jittered(const torch::Tensor& k) {
  double jitter = 1e-8;
  for (int i = 0; i < 8; ++i, jitter *= 10) {
    auto [l, info] = torch::linalg_cholesky_ex(k + jitter * torch::eye(k.size(0), torch::kFloat64));
    if (info.item<int64_t>() == 0) return l;
  }
  throw Error("surrogate: the kernel matrix is not positive definite even with jitter 1e-1");
}

}  // namespace

void GaussianProcess::fit(const Matrix& x, const std::vector<double>& y, int steps) {
  if (x.size() != y.size() || x.size() < 2) throw InputError("surrogate: needs at least 2 rows with one target each");
  const size_t d = x[0].size();
  for (const auto& r : x) {
    if (r.size() != d) throw InputError("surrogate: feature rows differ in length");
    for (const double v : r) {
      if (!std::isfinite(v)) throw InputError("surrogate: a feature is not finite");
    }
  }
  for (const double v : y) {
    if (!std::isfinite(v)) throw InputError("surrogate: a target is not finite");
  }
  torch::NoGradGuard outer;
  auto X = to_tensor(x);
  auto Y = to_tensor(y);
  auto mx = X.mean(0), sx = X.std(0, /*unbiased=*/false);
  sx = torch::where(sx > 1e-12, sx, torch::ones_like(sx));
  mu_x_ = to_vector(mx);
  sd_x_ = to_vector(sx);
  mu_y_ = Y.mean().item<double>();
  const double sy = Y.std(/*unbiased=*/false).item<double>();
  sd_y_ = sy > 1e-12 ? sy : 1.0;
  const auto Z = (X - mx) / sx;
  const auto T = (Y - mu_y_) / sd_y_;
  const int64_t n = Z.size(0);

  // Hyperparameters, optimised in log space within bounds that keep the
  // kernel sane (length-scales 0.05..100 z-units, noise 1e-4..1).
  auto log_ls = torch::full({int64_t(d)}, 0.5 * std::log(double(std::max<size_t>(d, 1))), torch::kFloat64).set_requires_grad(true);
  auto log_signal = torch::zeros({}, torch::kFloat64).set_requires_grad(true);
  auto log_noise = torch::full({}, std::log(0.1), torch::kFloat64).set_requires_grad(true);
  torch::optim::Adam opt({log_ls, log_signal, log_noise}, torch::optim::AdamOptions(0.1));
  const auto eye = torch::eye(n, torch::kFloat64);
  for (int it = 0; it < steps; ++it) {
    torch::AutoGradMode on(true);
    opt.zero_grad();
    const auto ls = torch::exp(log_ls.clamp(std::log(0.05), std::log(100.0)));
    const auto sig = torch::exp(log_signal.clamp(-4.0, 4.0));
    const auto noi = torch::exp(log_noise.clamp(std::log(1e-4), 0.0));
    const auto k = matern52(Z, Z, ls, sig) + (noi + 1e-6) * eye;
    auto [l, info] = torch::linalg_cholesky_ex(k);
    if (info.item<int64_t>() != 0) break;  // keep the last good hyperparameters
    const auto alpha = torch::cholesky_solve(T.unsqueeze(1), l);
    const auto nll = 0.5 * (T.unsqueeze(1) * alpha).sum() + torch::log(torch::diagonal(l)).sum();
    (nll / double(n)).backward();
    opt.step();
  }
  ls_ = to_vector(torch::exp(log_ls.clamp(std::log(0.05), std::log(100.0))));
  signal_ = std::exp(std::clamp(log_signal.item<double>(), -4.0, 4.0));
  noise_ = std::exp(std::clamp(log_noise.item<double>(), std::log(1e-4), 0.0));
  xs_.clear();
  const auto za = Z.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> r(d);
    for (size_t j = 0; j < d; ++j) r[j] = za[i][int64_t(j)];
    xs_.push_back(std::move(r));
  }
  ys_ = to_vector(T);
  factor();
}

void GaussianProcess::condition_on(const Matrix& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw InputError("surrogate: condition_on needs one target per row");
  if (x.empty()) return;
  for (size_t i = 0; i < x.size(); ++i) {
    if (x[i].size() != mu_x_.size()) throw InputError("surrogate: feature rows differ in length");
    std::vector<double> r(x[i].size());
    for (size_t j = 0; j < r.size(); ++j) r[j] = (x[i][j] - mu_x_[j]) / sd_x_[j];
    xs_.push_back(std::move(r));
    ys_.push_back((y[i] - mu_y_) / sd_y_);
  }
  factor();
}

void GaussianProcess::factor() {
  torch::NoGradGuard g;
  const auto Z = to_tensor(xs_);
  const auto ls = to_tensor(ls_);
  const auto k = matern52(Z, Z, ls, torch::tensor(signal_, torch::kFloat64)) +
                 (noise_ + 1e-6) * torch::eye(Z.size(0), torch::kFloat64);
  const auto l = cholesky_jittered(k);
  chol_ = to_vector(l);
  alpha_ = to_vector(torch::cholesky_solve(to_tensor(ys_).unsqueeze(1), l).squeeze(1));
}

GpPrediction GaussianProcess::predict(const Matrix& x) const {
  if (xs_.empty()) throw Error("surrogate: predict before fit");
  GpPrediction p;
  if (x.empty()) return p;
  torch::NoGradGuard g;
  auto Q = to_tensor(x);
  if (Q.size(1) != int64_t(mu_x_.size())) throw InputError("surrogate: query rows have the wrong number of features");
  Q = (Q - to_tensor(mu_x_)) / to_tensor(sd_x_);
  const auto Z = to_tensor(xs_);
  const int64_t n = Z.size(0);
  const auto ks = matern52(Q, Z, to_tensor(ls_), torch::tensor(signal_, torch::kFloat64));  // [m, n]
  const auto mean = ks.matmul(to_tensor(alpha_));
  const auto l = to_tensor(chol_).view({n, n});
  const auto v = torch::linalg_solve_triangular(l, ks.t(), /*upper=*/false);  // [n, m]
  const auto var = (signal_ - v.pow(2).sum(0)).clamp_min(0);
  p.mean = to_vector(mean * sd_y_ + mu_y_);
  p.sd = to_vector(torch::sqrt(var) * sd_y_);
  return p;
}

}  // namespace flashnas
