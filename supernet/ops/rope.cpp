#include "supernet/ops/rope.h"

#include "supernet/rms_norm.h"

namespace flashnas {

torch::Tensor apply_rope(const torch::Tensor& x, int64_t pos0, double theta) {
  const int64_t T = x.size(2), dh = x.size(3), half = dh / 2;
  const auto acc = accum_dtype(x.scalar_type());
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  // Positions can reach 1e5+; float64 angles keep cos/sin exact to float32.
  auto inv_freq = torch::pow(theta, -torch::arange(0, half, f64) * 2.0 / static_cast<double>(dh));  // [half]
  auto pos = torch::arange(pos0, pos0 + T, f64);                                                   // [T]
  auto ang = torch::outer(pos, inv_freq);                                                          // [T, half]
  auto cos = torch::cat({ang.cos(), ang.cos()}, -1).to(acc);                                       // [T, dh]
  auto sin = torch::cat({ang.sin(), ang.sin()}, -1).to(acc);
  auto xf = x.to(acc);
  auto x1 = xf.narrow(-1, 0, half), x2 = xf.narrow(-1, half, half);
  auto rot = torch::cat({-x2, x1}, -1);
  return (xf * cos + rot * sin).to(x.scalar_type());
}

}  // namespace flashnas
