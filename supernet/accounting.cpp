#include "supernet/accounting.h"

#include "common/error.h"
#include "supernet/registry.h"

namespace flashnas {

ModelAccount account(const ArchSpec& spec, int64_t context, int64_t act_bytes) {
  if (context < 0 || context > kMaxContext) {
    throw InputError("--context: must be 0.." + std::to_string(kMaxContext) + " tokens, got " + std::to_string(context));
  }
  ModelAccount m;
  m.context = context;
  m.act_bytes = act_bytes;
  const int64_t d = spec.d_model;
  const int64_t positions = context + spec.n_meta_tokens;
  m.params_embedding = spec.vocab_size * d;
  m.params_meta = spec.n_meta_tokens * d;
  m.params_head = spec.tie_embeddings ? 0 : spec.vocab_size * d;
  m.params_final_norm = d;
  const double head_flops = 2.0 * static_cast<double>(spec.vocab_size * d);
  m.flops_per_token_decode = head_flops;
  m.flops_per_token_prefill = head_flops;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const auto& l = spec.layers[i];
    const OpKind& kind = find_op_kind(l.type, "layer");
    const OpCost cost = kind.cost(l.hp, ModelDims{d});
    LayerAccount la;
    la.index = static_cast<int64_t>(i);
    la.type = l.type;
    la.summary = kind.summary(l.hp);
    la.params = cost.params + d;
    la.flops_decode = cost.flops_decode(positions);
    la.flops_prefill = cost.flops_prefill(positions);
    la.state_bytes = cost.state(positions, act_bytes);
    const std::string where = (spec.name.empty() ? std::string("architecture") : spec.name) + ", layers[" +
                              std::to_string(i) + "] (" + l.type + ")";
    if (la.params < 0 || __builtin_add_overflow(m.params_layers, la.params, &m.params_layers)) {
      throw InputError(where + ": the parameter count exceeds what flashnas counts (2^63)");
    }
    if (la.state_bytes < 0 || la.state_bytes == INT64_MAX ||
        __builtin_add_overflow(m.state_bytes, la.state_bytes, &m.state_bytes)) {
      throw InputError(where + ": the decode state at context " + std::to_string(context) +
                       " exceeds what flashnas counts (2^63 bytes)");
    }
    m.flops_per_token_decode += la.flops_decode;
    m.flops_per_token_prefill += la.flops_prefill;
    m.layers.push_back(std::move(la));
  }
  m.params_total = m.params_embedding + m.params_meta + m.params_head + m.params_layers + m.params_final_norm;  // each < 2^62
  return m;
}

json account_json(const ArchSpec& spec, const ModelAccount& m, const std::string& dtype) {
  json layers = json::array();
  for (const auto& l : m.layers) {
    layers.push_back({{"index", l.index},
                      {"type", l.type},
                      {"summary", l.summary},
                      {"params", l.params},
                      {"flops_per_token_decode", l.flops_decode},
                      {"flops_per_token_prefill", l.flops_prefill},
                      {"state_bytes", l.state_bytes}});
  }
  return json{{"name", spec.name},
              {"hash", spec.hash()},
              {"d_model", spec.d_model},
              {"vocab_size", spec.vocab_size},
              {"n_meta_tokens", spec.n_meta_tokens},
              {"tie_embeddings", spec.tie_embeddings},
              {"n_layers", spec.layers.size()},
              {"context", m.context},
              {"dtype", dtype},
              {"params_total", m.params_total},
              {"params_embedding", m.params_embedding},
              {"params_meta", m.params_meta},
              {"params_head", m.params_head},
              {"params_layers", m.params_layers},
              {"flops_per_token_decode", m.flops_per_token_decode},
              {"flops_per_token_prefill", m.flops_per_token_prefill},
              {"state_bytes", m.state_bytes},
              {"layers", layers}};
}

}  // namespace flashnas
