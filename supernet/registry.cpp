#include "supernet/registry.h"

#include "common/error.h"
#include "supernet/ops/attn.h"
#include "supernet/ops/deltanet.h"
#include "supernet/ops/ffn.h"
#include "supernet/ops/gdn.h"
#include "supernet/ops/mamba2.h"
#include "supernet/ops/swa.h"

namespace flashnas {

const std::vector<OpKind>& op_kinds() {
  // Every operator is registered here and nowhere else.
  static const std::vector<OpKind> kinds = {
      attn_kind(), swa_kind(), mamba2_kind(), deltanet_kind(), gdn_kind(), ffn_kind(),
  };
  return kinds;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const auto& k : op_kinds()) names.push_back(k.name);
  return names;
}

std::shared_ptr<Operator> make_operator(const std::string& type, const json& hp, int64_t d_model) {
  return find_op_kind(type, "operator").create(hp, ModelDims{d_model});
}

const OpKind& find_op_kind(const std::string& name, const std::string& where) {
  for (const auto& k : op_kinds()) {
    if (k.name == name) return k;
  }
  throw InputError(where + ": unknown operator \"" + name + "\"; valid operators: " + join_comma(op_names()));
}

}  // namespace flashnas
