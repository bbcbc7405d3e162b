#include "supernet/ops/init.h"

#include <torch/nn/init.h>

namespace flashnas {

torch::nn::Linear linear_no_bias(int64_t in, int64_t out) {
  torch::nn::Linear l(torch::nn::LinearOptions(in, out).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::normal_(l->weight, 0.0, kInitStd);
  return l;
}

}  // namespace flashnas
