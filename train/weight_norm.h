// The paper's weight normalization (Nemotron-Flash section 5, after nGPT):
// after every optimizer step, each matrix that reads from the residual stream
// gets unit-norm rows (W [out, d]: every W[i, :] has L2 norm 1) and each
// matrix that writes into it gets unit-norm columns (W [d, in]: every W[:, j]
// has norm 1); both normalise along the d_model axis. Embeddings, the LM head,
// norm gains, biases, convolutions and SSM scalars are left alone. Which
// matrices read or write is declared by each operator (OpKind::residual_roles).
#pragma once
#include <string>
#include <vector>

#include "supernet/hybrid_lm.h"

namespace flashnas {

struct WeightNormPlan {
  std::vector<std::string> row_names, col_names;  // full parameter names
  std::vector<torch::Tensor> rows, cols;          // the parameters themselves
};

// The plan for a model: every sublayer's declared reader/writer matrices.
WeightNormPlan weight_norm_plan(HybridLMImpl& model);

// Projects the planned matrices onto unit rows/columns, in place, without
// recording gradients. Norms are computed in float32 or wider.
void apply_weight_norm(const WeightNormPlan& plan);

}  // namespace flashnas
