#include "supernet/ops/rope.h"

#include "supernet/rms_norm.h"

namespace flashnas {

torch::Tensor apply_rope(const torch::Tensor& x, int64_t pos0, double theta) {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  return apply_rope(x, torch::arange(pos0, pos0 + x.size(2), opts), theta);
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta) {
  const int64_t dh = x.size(3), half = dh / 2;
  TORCH_CHECK(positions.dim() == 1 && positions.size(0) == x.size(2), "apply_rope: positions must be [T]");
  const auto acc = accum_dtype(x.scalar_type());
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(x.device());
  // Positions can reach 1e5+; float64 angles keep cos/sin exact to float32.
  auto inv_freq = torch::pow(theta, -torch::arange(0, half, f64) * 2.0 / static_cast<double>(dh));  // [half]
  auto pos = positions.to(torch::kFloat64);                                                         // [T]
  auto ang = torch::outer(pos, inv_freq);                                                          // [T, half]
  auto cos = torch::cat({ang.cos(), ang.cos()}, -1).to(acc);                                       // [T, dh]
  auto sin = torch::cat({ang.sin(), ang.sin()}, -1).to(acc);
  auto xf = x.to(acc);
  auto x1 = xf.narrow(-1, 0, half), x2 = xf.narrow(-1, half, half);
  auto rot = torch::cat({-x2, x1}, -1);
  return (xf * cos + rot * sin).to(x.scalar_type());
}

}  // namespace flashnas
