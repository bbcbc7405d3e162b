#include "supernet/ops/gdn.h"

#include <cmath>

#include "supernet/ops/delta_rule.h"

namespace flashnas {

OpKind gdn_kind() {
  OpKind k;
  k.name = "gdn";
  k.transformers = true;
  k.description = "Gated DeltaNet (DeltaNet + decay gate; conv + [heads, dk, dv] recurrent state)";
  k.fields = deltanet_fields(6, 256, 2, true);
  k.testing.cases = {json{{"n_heads", 2}, {"head_k_dim", 4}, {"head_v_dim", 6}, {"chunk_size", 8}}};
  k.testing.bench = [](int64_t d) {
    return json{{"n_heads", std::max<int64_t>(1, d / 64)}, {"head_k_dim", 64}, {"head_v_dim", 128}};
  };
  // fla's naive_recurrent_gated_delta_rule: q, k, v [B, T, H, D] (q scaled inside), beta, g [B, T, H], S0 [B, H, dk, dv].
  k.testing.golden = [](const OpTesting::Tensors& in, const std::map<std::string, std::string>&) {
    auto tr = [&](const char* n) { return in.at(n).transpose(1, 2); };
    auto q = tr("q");
    auto [o, S] = delta_rule_chunked(q / std::sqrt(static_cast<double>(q.size(-1))), tr("k"), tr("v"), tr("beta"), tr("g"),
                                     in.at("S0"), 8);
    return OpTesting::Tensors{{"o", o.transpose(1, 2)}, {"state", S}};
  };
  k.create = [](const json& hp, const ModelDims& dims) {
    return std::make_shared<DeltaNetOp>(DeltaNetConfig::from_json(hp, true), dims.d_model);
  };
  k.cost = [](const json& hp, const ModelDims& dims) { return deltanet_cost(hp, dims, true); };
  k.summary = deltanet_summary;
  k.residual_roles = [](const json& hp) { return deltanet_roles(hp, true); };
  return k;
}

}  // namespace flashnas
