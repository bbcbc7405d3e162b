#include "supernet/ops/gdn.h"

namespace flashnas {

OpKind gdn_kind() {
  OpKind k;
  k.name = "gdn";
  k.transformers = true;
  k.description = "Gated DeltaNet (DeltaNet + decay gate; conv + [heads, dk, dv] recurrent state)";
  k.defaults_doc = {{"n_heads", "6"},      {"head_k_dim", "256"}, {"head_v_dim", "2 * head_k_dim"}, {"use_gate", "true"},
                    {"conv_kernel", "4"},  {"chunk_size", "64"},  {"norm_eps", "1e-5"}};
  k.canonicalize = [](FieldReader& f, const ModelDims& dims) {
    DeltaNetConfig def;
    def.n_heads = 6;
    def.head_k_dim = 256;
    def.use_gate = true;
    return canonicalize_deltanet(f, dims, def, 2);
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
