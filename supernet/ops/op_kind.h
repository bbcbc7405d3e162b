// What the registry knows about one operator type: its name, a description,
// its hyperparameters (a field table: key, type, meaning, default, bounds),
// the checks between them, how to build the module, how to account for it,
// which of its matrices read from / write to the residual stream, and what
// the registry-driven tests and benchmarks need (OpTesting).
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
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

// One hyperparameter, declared once: canonicalisation (ArchSpec::parse_layer,
// through canonical_hp in registry.h), defaults, validation messages and
// `flashnas arch ops` all come from it.
struct HpField {
  enum class Type { integer, positive_number, boolean };
  std::string key;
  Type type = Type::integer;
  std::string meaning;      // one line for `flashnas arch ops`
  std::string default_doc;  // the default as documentation ("8", "d_model / n_heads")
  // The default, from the fields declared before it (canonical values) and
  // the model's sizes; it may refuse (f.fail) where no default exists.
  std::function<json(const json& before, const ModelDims& dims, FieldReader& f)> default_value;
  int64_t min = 1;  // integers: the smallest allowed value
};

// Builders for the common cases.
HpField int_field(std::string key, std::string meaning, int64_t def, int64_t min = 1);
HpField int_field(std::string key, std::string meaning, std::string default_doc,
                  std::function<int64_t(const json& before, const ModelDims& dims, FieldReader& f)> def, int64_t min = 1);
HpField number_field(std::string key, std::string meaning, double def);  // finite and > 0
HpField bool_field(std::string key, std::string meaning, bool def);

// How an operator's decode state behaves, for the registry-driven tests.
enum class StateKind {
  none,       // no state (ffn)
  cache,      // a cache of past keys/values, filled by running tokens through it
  recurrent,  // fixed-size buffers any value of which is a valid state
};

// What the registry-driven tests (tests/test_registry_ops.cpp,
// tests/test_cuda.cpp) and the mixer benchmark (bench/bench_mixers.cpp)
// need to know about an operator.
inline constexpr int64_t kOpTestDModel = 16;  // d_model of the test cases
struct OpTesting {
  StateKind state = StateKind::recurrent;
  // Hyperparameter sets (without "type") at d_model = kOpTestDModel that
  // together cover the operator's variants. Chunked forms use chunks of 8 so
  // that the tests' lengths (3, 16, 21) cover a partial chunk, a multiple
  // and a remainder.
  std::vector<json> cases;
  // Fixed tolerances of the forward-against-step checks: float64 absolute,
  // float32 relative to the output's scale (tests/test_util.h numeric_error).
  double tol_f64 = 1e-10, tol_f32 = 1e-4;
  // Hyperparameters for bench_mixers at width d (practical head sizes);
  // unset: not a token mixer, not in the mixer benchmark.
  std::function<json(int64_t d)> bench;
  // flashnas's computation on the inputs of the operator's golden file
  // (tests/golden/<name>.safetensors, written by scripts/golden_refs.py from
  // the published reference implementation; metadata as strings), returning
  // the outputs under the file's names. Inputs arrive in the dtype under test.
  using Tensors = std::map<std::string, torch::Tensor>;
  std::function<Tensors(const Tensors& in, const std::map<std::string, std::string>& meta)> golden;
};

struct ResidualRoles {
  std::vector<std::string> reads;   // W [out, d_model]
  std::vector<std::string> writes;  // W [d_model, in]
};

struct OpKind {
  std::string name;
  std::string description;
  // The hyperparameters, in the order they are read (a default may depend
  // on the fields before it).
  std::vector<HpField> fields;
  // Checks between fields once all are read (e.g. "head_dim must divide
  // expand * d_model"); refuses with f.fail(key, what). May be unset.
  std::function<void(const json& hp, const ModelDims& dims, FieldReader& f)> check;
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
  // export/hf/modeling_flashnas.py implements this operator, so exports that
  // use it load in Hugging Face transformers (export/hf_export.h).
  bool transformers = false;
  OpTesting testing;
};

}  // namespace flashnas
