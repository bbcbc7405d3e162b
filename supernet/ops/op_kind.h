// What the registry knows about one operator type: its name, a description,
// its documented default hyperparameters, how to validate/canonicalise a
// layer's hyperparameters, how to build the module, how to account for it,
// and which of its matrices read from / write to the residual stream.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json_io.h"
#include "supernet/ops/operator.h"

namespace flashnas {

// Model-wide sizes an operator's config may depend on.
struct ModelDims {
  int64_t d_model = 0;
};

struct ResidualRoles {
  std::vector<std::string> reads;   // W [out, d_model]
  std::vector<std::string> writes;  // W [d_model, in]
};

struct OpKind {
  std::string name;
  std::string description;
  // Default hyperparameters as documentation: value and meaning per key.
  // Defaults that depend on d_model are written as text ("d_model / 64").
  std::vector<std::pair<std::string, std::string>> defaults_doc;
  // Reads the layer's hyperparameters (the "type" key already consumed),
  // validates them and returns the canonical hyperparameters with every
  // default filled. Errors are InputError naming the field.
  std::function<json(FieldReader& fields, const ModelDims& dims)> canonicalize;
  // Builds the module from canonical hyperparameters.
  std::function<std::shared_ptr<Operator>(const json& hp, const ModelDims& dims)> create;
  // Static accounting from canonical hyperparameters.
  std::function<OpCost(const json& hp, const ModelDims& dims)> cost;
  // One-line summary of the key hyperparameters ("heads=16 kv=4 dh=128").
  std::function<std::string(const json& hp)> summary;
  // Parameter names (relative to the operator) of matrices that read from the
  // residual stream (rows normalised by weight normalization) and that write
  // into it (columns normalised), for given canonical hyperparameters.
  std::function<ResidualRoles(const json& hp)> residual_roles;
  // search/hf/modeling_flashnas.py implements this operator, so exports that
  // use it load in Hugging Face transformers (search/hf_export.h).
  bool transformers = false;
};

}  // namespace flashnas
