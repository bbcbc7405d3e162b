// The guided search's surrogate (search/guided.h): Gaussian-process
// regression with an ARD Matérn-5/2 kernel, in float64 on LibTorch.
//
// Why a GP on LibTorch: a study has tens to a few hundred trained trials, the
// regime where a GP's exact posterior (mean and standard deviation, what an
// acquisition that weighs promise against uncertainty needs) is cheap (an n x n Cholesky) and well
// calibrated, and LibTorch is already the project's numerics library, so the
// surrogate adds no dependency. Tree ensembles (XGBoost) would need bootstrap
// ensembles for an uncertainty and are weaker at these sample sizes.
//
// Inputs are z-scored per feature over the training rows (constant features
// get unit scale); targets are z-scored. Hyperparameters (a log length-scale
// per feature, log signal variance, log noise variance) maximise the log
// marginal likelihood by Adam from a fixed start for a fixed number of
// steps, so a fit is a deterministic function of its data.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace flashnas {

using Matrix = std::vector<std::vector<double>>;  // [rows][features]

struct GpPrediction {
  std::vector<double> mean, sd;  // per query row, in target units; sd of the latent function (no noise)
};

// The rows a surrogate keeps when a study has more than `limit`: the
// limit / 2 lowest targets (where the search looks) and the rest spread
// evenly over the others in their order (the space elsewhere), as indices in
// increasing order. All rows, in order, when there are no more than `limit`.
// Deterministic. Why: a proposal must stay cheap at thousands of trials
// (docs/search.md, "Large studies").
std::vector<size_t> surrogate_rows(const std::vector<double>& y, size_t limit);

class GaussianProcess {
 public:
  // x: [n][d], y: [n]; n >= 2. InputError for ragged or non-finite input.
  void fit(const Matrix& x, const std::vector<double>& y, int steps = 80);
  // Adds rows with the given targets to the conditioning set, keeping the
  // fitted hyperparameters (e.g. pending trials at their predicted mean,
  // "kriging believer", so parallel workers spread out).
  void condition_on(const Matrix& x, const std::vector<double>& y);
  // Replaces the conditioning set with these rows, keeping the fitted
  // hyperparameters and feature scaling: hyperparameters fitted on a subset
  // (the fit costs steps x an n^3 Cholesky), the posterior on more rows (one).
  void recondition(const Matrix& x, const std::vector<double>& y);
  // with_sd = false leaves sd empty (the mean alone costs a matrix product,
  // the sd a triangular solve against every conditioning row).
  GpPrediction predict(const Matrix& x, bool with_sd = true) const;

 private:
  torch::Tensor standardize(const Matrix& x) const;  // z-scored rows, [n, d] float64
  void factor();
  // All float64. Feature and target scaling of the training rows.
  torch::Tensor mu_x_, sd_x_;  // [d]
  double mu_y_ = 0, sd_y_ = 1;
  // Kernel hyperparameters: length-scales in z-units [d], signal and noise variance in z-units.
  torch::Tensor ls_;
  double signal_ = 1, noise_ = 1e-2;
  torch::Tensor xs_;     // [n, d] z-scored conditioning rows
  torch::Tensor ys_;     // [n, 1] z-scored targets
  torch::Tensor chol_;   // [n, n] lower Cholesky factor of K
  torch::Tensor alpha_;  // [n, 1] K^-1 y
};

}  // namespace flashnas
