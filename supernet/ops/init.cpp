#include "supernet/ops/init.h"

#include <torch/nn/init.h>

#include <cmath>

namespace flashnas {

torch::nn::Linear linear_no_bias(int64_t in, int64_t out) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(l->weight, 0.0, kInitStd);
  return l;
}

torch::Tensor init_dt_bias(int64_t n) {
  auto dt = (torch::rand({n}) * (std::log(0.1) - std::log(1e-3)) + std::log(1e-3)).exp().clamp_min(1e-4);
  return dt + torch::log(-torch::expm1(-dt));
}

}  // namespace flashnas
