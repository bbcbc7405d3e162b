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

// Reads a layer's hyperparameters (the "type" key already consumed) through
// the kind's field table, fills every default, runs its checks and returns
// the canonical hyperparameters. Errors are InputError naming the field.
json canonical_hp(const OpKind& kind, FieldReader& fields, const ModelDims& dims);

// Builds the operator module for a canonical layer (see ArchSpec::parse_layer).
std::shared_ptr<Operator> make_operator(const std::string& type, const json& hp, int64_t d_model);

// Every kind with its description and fields (key, meaning, default), and
// whether transformers loads it: as JSON, and as text for `flashnas arch ops`.
json describe_op_kinds();
std::string op_kinds_text();

// Names of all registered kinds.
std::vector<std::string> op_names();

}  // namespace flashnas
