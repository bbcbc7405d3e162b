#include "supernet/ops/short_conv.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/init.h>

#include <cmath>

namespace flashnas {

ShortConvImpl::ShortConvImpl(int64_t channels_, int64_t kernel_, bool use_bias, bool silu_)
    : channels(channels_), kernel(kernel_), silu(silu_) {
  // PyTorch's Conv1d default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = K for depthwise.
  const double bound = 1.0 / std::sqrt(static_cast<double>(kernel));
  weight = register_parameter("weight", torch::empty({channels, 1, kernel}).uniform_(-bound, bound));
  if (use_bias) bias = register_parameter("bias", torch::empty({channels}).uniform_(-bound, bound));
}

torch::Tensor ShortConvImpl::forward(const torch::Tensor& x, torch::Tensor* state) {
  const int64_t B = x.size(0), T = x.size(1);
  auto xt = x.transpose(1, 2);  // [B, D, T]
  torch::Tensor left = state ? state->narrow(2, 1, kernel - 1).to(x.scalar_type())
                             : torch::zeros({B, channels, kernel - 1}, x.options());
  auto xp = torch::cat({left, xt}, 2);  // [B, D, T + K - 1]
  namespace F = torch::nn::functional;
  auto y = F::conv1d(xp, weight, F::Conv1dFuncOptions().bias(bias).groups(channels));  // [B, D, T]
  if (state) state->copy_(xp.narrow(2, T - 1, kernel));
  return (silu ? torch::silu(y) : y).transpose(1, 2);
}

torch::Tensor ShortConvImpl::step(const torch::Tensor& x, torch::Tensor& state) {
  // Shift left by one and append x_t.
  state.copy_(torch::cat({state.narrow(2, 1, kernel - 1), x.unsqueeze(2).to(state.scalar_type())}, 2));
  auto y = (state * weight.squeeze(1)).sum(-1);
  if (bias.defined()) y = y + bias;
  return silu ? torch::silu(y) : y;
}

torch::Tensor ShortConvImpl::init_state(int64_t batch, torch::ScalarType dtype) const {
  return torch::zeros({batch, channels, kernel}, torch::TensorOptions().dtype(dtype).device(weight.device()));
}

}  // namespace flashnas
