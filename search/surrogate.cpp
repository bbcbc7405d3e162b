#include "search/surrogate.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "common/error.h"

namespace flashnas {
namespace {

// [n, d] float64; InputError for ragged rows or non-finite values.
torch::Tensor to_tensor(const Matrix& x) {
  const int64_t n = int64_t(x.size()), d = n ? int64_t(x[0].size()) : 0;
  auto t = torch::empty({n, d}, torch::kFloat64);
  auto a = t.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    if (int64_t(x[size_t(i)].size()) != d) throw InputError("surrogate: feature rows differ in length");
    for (int64_t j = 0; j < d; ++j) {
      a[i][j] = x[size_t(i)][size_t(j)];
      if (!std::isfinite(a[i][j])) throw InputError("surrogate: a feature is not finite");
    }
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
  for (const double v : y) {
    if (!std::isfinite(v)) throw InputError("surrogate: a target is not finite");
  }
  torch::NoGradGuard outer;
  const auto X = to_tensor(x);  // checks shape and finiteness
  const auto Y = to_tensor(y);
  mu_x_ = X.mean(0);
  const auto sx = X.std(0, /*unbiased=*/false);
  sd_x_ = torch::where(sx > 1e-12, sx, torch::ones_like(sx));  // constant features: unit scale
  mu_y_ = Y.mean().item<double>();
  const double sy = Y.std(/*unbiased=*/false).item<double>();
  sd_y_ = sy > 1e-12 ? sy : 1.0;
  const auto Z = (X - mu_x_) / sd_x_;
  const auto T = ((Y - mu_y_) / sd_y_).unsqueeze(1);
  const int64_t n = Z.size(0), d = Z.size(1);

  // Hyperparameters, optimised in log space within bounds that keep the
  // kernel sane (length-scales 0.05..100 z-units, signal e^-4..e^4, noise 1e-4..1).
  auto log_ls = torch::full({d}, 0.5 * std::log(double(std::max<int64_t>(d, 1))), torch::kFloat64).set_requires_grad(true);
  auto log_signal = torch::zeros({}, torch::kFloat64).set_requires_grad(true);
  auto log_noise = torch::full({}, std::log(0.1), torch::kFloat64).set_requires_grad(true);
  const auto bounded = [&] {
    return std::make_tuple(torch::exp(log_ls.clamp(std::log(0.05), std::log(100.0))), torch::exp(log_signal.clamp(-4.0, 4.0)),
                           torch::exp(log_noise.clamp(std::log(1e-4), 0.0)));
  };
  torch::optim::Adam opt({log_ls, log_signal, log_noise}, torch::optim::AdamOptions(0.1));
  const auto eye = torch::eye(n, torch::kFloat64);
  for (int it = 0; it < steps; ++it) {
    torch::AutoGradMode on(true);
    opt.zero_grad();
    const auto [ls, sig, noi] = bounded();
    auto [l, info] = torch::linalg_cholesky_ex(matern52(Z, Z, ls, sig) + (noi + 1e-6) * eye);
    if (info.item<int64_t>() != 0) break;  // keep the last good hyperparameters
    const auto alpha = torch::cholesky_solve(T, l);
    const auto nll = 0.5 * (T * alpha).sum() + torch::log(torch::diagonal(l)).sum();
    (nll / double(n)).backward();
    opt.step();
  }
  const auto [ls, sig, noi] = bounded();
  ls_ = ls.detach();
  signal_ = sig.item<double>();
  noise_ = noi.item<double>();
  xs_ = Z;
  ys_ = T;
  factor();
}

torch::Tensor GaussianProcess::standardize(const Matrix& x) const {
  const auto X = to_tensor(x);
  if (X.size(1) != mu_x_.size(0)) throw InputError("surrogate: rows have the wrong number of features");
  return (X - mu_x_) / sd_x_;
}

void GaussianProcess::condition_on(const Matrix& x, const std::vector<double>& y) {
  if (x.size() != y.size()) throw InputError("surrogate: condition_on needs one target per row");
  if (x.empty()) return;
  torch::NoGradGuard g;
  xs_ = torch::cat({xs_, standardize(x)});
  ys_ = torch::cat({ys_, ((to_tensor(y) - mu_y_) / sd_y_).unsqueeze(1)});
  factor();
}

void GaussianProcess::recondition(const Matrix& x, const std::vector<double>& y) {
  if (!xs_.defined()) throw Error("surrogate: recondition before fit");
  if (x.size() != y.size() || x.empty()) throw InputError("surrogate: recondition needs rows with one target each");
  for (const double v : y) {
    if (!std::isfinite(v)) throw InputError("surrogate: a target is not finite");
  }
  torch::NoGradGuard g;
  xs_ = standardize(x);
  ys_ = ((to_tensor(y) - mu_y_) / sd_y_).unsqueeze(1);
  factor();
}

std::vector<size_t> surrogate_rows(const std::vector<double>& y, size_t limit) {
  std::vector<size_t> all(y.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (y.size() <= limit) return all;
  std::vector<size_t> by_target = all;
  std::stable_sort(by_target.begin(), by_target.end(), [&](size_t a, size_t b) { return y[a] < y[b]; });
  std::vector<bool> keep(y.size(), false);
  const size_t best = limit / 2;
  for (size_t i = 0; i < best; ++i) keep[by_target[i]] = true;
  std::vector<size_t> rest;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!keep[i]) rest.push_back(i);
  }
  const size_t spread = limit - best;
  for (size_t k = 0; k < spread; ++k) keep[rest[k * rest.size() / spread]] = true;
  std::vector<size_t> out;
  for (size_t i = 0; i < y.size(); ++i) {
    if (keep[i]) out.push_back(i);
  }
  return out;
}

void GaussianProcess::factor() {
  torch::NoGradGuard g;
  const auto k = matern52(xs_, xs_, ls_, torch::tensor(signal_, torch::kFloat64)) +
                 (noise_ + 1e-6) * torch::eye(xs_.size(0), torch::kFloat64);
  chol_ = cholesky_jittered(k);
  alpha_ = torch::cholesky_solve(ys_, chol_);
}

GpPrediction GaussianProcess::predict(const Matrix& x, bool with_sd) const {
  if (!xs_.defined()) throw Error("surrogate: predict before fit");
  GpPrediction p;
  if (x.empty()) return p;
  torch::NoGradGuard g;
  const auto ks = matern52(standardize(x), xs_, ls_, torch::tensor(signal_, torch::kFloat64));  // [m, n]
  const auto mean = ks.matmul(alpha_).squeeze(1);
  p.mean = to_vector(mean * sd_y_ + mu_y_);
  if (!with_sd) return p;
  const auto v = torch::linalg_solve_triangular(chol_, ks.t(), /*upper=*/false);  // [n, m]
  const auto var = (signal_ - v.pow(2).sum(0)).clamp_min(0);
  p.sd = to_vector(torch::sqrt(var) * sd_y_);
  return p;
}

}  // namespace flashnas
