#include "train/weight_norm.h"

#include "common/error.h"
#include "supernet/registry.h"
#include "supernet/rms_norm.h"

namespace flashnas {

WeightNormPlan weight_norm_plan(HybridLMImpl& model) {
  WeightNormPlan plan;
  const auto params = model.named_parameters();
  const auto& layers = model.spec().layers;
  auto add = [&](const std::string& name, std::vector<std::string>& names, std::vector<torch::Tensor>& ts) {
    const torch::Tensor* p = params.find(name);
    if (!p) throw Error("weight normalization: operator declares missing parameter " + name);
    if (p->dim() != 2) throw Error("weight normalization: " + name + " is not a matrix");
    names.push_back(name);
    ts.push_back(*p);
  };
  for (size_t i = 0; i < layers.size(); ++i) {
    const OpKind& kind = find_op_kind(layers[i].type, "layer");
    const std::string prefix = "layers." + std::to_string(i) + "." + layers[i].type + ".";
    const ResidualRoles roles = kind.residual_roles(layers[i].hp);
    for (const auto& n : roles.reads) add(prefix + n, plan.row_names, plan.rows);
    for (const auto& n : roles.writes) add(prefix + n, plan.col_names, plan.cols);
  }
  return plan;
}

namespace {
// Divides `w` by its L2 norms along `dim` (kept), computed in float32 or wider.
void normalize_along(torch::Tensor& w, int64_t dim) {
  const auto acc = accum_dtype(w.scalar_type());
  auto norms = w.to(acc).pow(2).sum(dim, /*keepdim=*/true).sqrt().clamp_min(1e-12);
  w.copy_(w.to(acc) / norms);
}
}  // namespace

void apply_weight_norm(const WeightNormPlan& plan) {
  torch::NoGradGuard no_grad;
  // Readers W [out, d]: each row W[i, :] runs along d_model -> norm over dim 1.
  for (auto w : plan.rows) normalize_along(w, 1);
  // Writers W [d, in]: each column W[:, j] runs along d_model -> norm over dim 0.
  for (auto w : plan.cols) normalize_along(w, 0);
}

}  // namespace flashnas
