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
#include <cstdint>
#include <vector>

namespace flashnas {

using Matrix = std::vector<std::vector<double>>;  // [rows][features]

struct GpPrediction {
  std::vector<double> mean, sd;  // per query row, in target units; sd of the latent function (no noise)
};

class GaussianProcess {
 public:
  // x: [n][d], y: [n]; n >= 2. InputError for ragged or non-finite input.
  void fit(const Matrix& x, const std::vector<double>& y, int steps = 80);
  // Adds rows with the given targets to the conditioning set, keeping the
  // fitted hyperparameters (e.g. pending trials at their predicted mean,
  // "kriging believer", so parallel workers spread out).
  void condition_on(const Matrix& x, const std::vector<double>& y);
  GpPrediction predict(const Matrix& x) const;

  const std::vector<double>& length_scales() const { return ls_; }  // in z-scored feature units
  double noise() const { return noise_; }                          // in z-scored target units (variance)

 private:
  void factor();
  std::vector<double> mu_x_, sd_x_;
  double mu_y_ = 0, sd_y_ = 1;
  std::vector<double> ls_;
  double signal_ = 1, noise_ = 1e-2;
  Matrix xs_;                 // z-scored conditioning rows
  std::vector<double> ys_;    // z-scored targets
  std::vector<double> alpha_; // K^-1 y
  std::vector<double> chol_;  // lower Cholesky factor of K, row-major n x n
};

}  // namespace flashnas
