// The operator registry: operator type name -> OpKind (factory, description,
// defaults, accounting). Filled in one place, registry.cpp.
#pragma once
#include <string>
#include <vector>

#include "supernet/ops/op_kind.h"

namespace flashnas {

// All registered operator kinds, in registration order.
const std::vector<OpKind>& op_kinds();

// The kind named `name`; InputError listing the valid names otherwise.
// `where` prefixes the message (e.g. "arch.json: field \"layers[2].type\"").
const OpKind& find_op_kind(const std::string& name, const std::string& where);

// Builds the operator module for a canonical layer (see ArchSpec::parse_layer).
std::shared_ptr<Operator> make_operator(const std::string& type, const json& hp, int64_t d_model);

// Names of all registered kinds.
std::vector<std::string> op_names();

}  // namespace flashnas
