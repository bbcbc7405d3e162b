// The ArchSpec: one JSON document that fully describes a model. Genomes decode
// to it, the LUT prices it, the trainer builds it, the store saves it, the
// export writes it.
//
// Document (canonical form, keys sorted, every default filled):
//   {
//     "format": 1,                 // ArchSpec format version
//     "name": "demo-tiny",         // optional label; not part of the hash
//     "vocab_size": 256,           // default 256 (byte-level tokenizer)
//     "d_model": 128,              // required
//     "n_meta_tokens": 0,          // learnable tokens prepended to every sequence; default 0
//     "tie_embeddings": false,     // LM head shares the embedding matrix; default false
//     "norm_eps": 1e-05,           // RMSNorm epsilon; default 1e-5
//     "layers": [                  // required, non-empty; each a pre-norm residual sublayer
//       {"type": "attn", "n_heads": 4, "n_kv_heads": 2, "head_dim": 32, "rope_theta": 10000.0},
//       {"type": "ffn", "d_ff": 512}
//     ]
//   }
// An input document may also carry "op_defaults": {"<type>": {hyperparameters}},
// applied to every layer of that type that does not set them; the canonical
// form has them expanded into the layers and drops the key.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "common/json_io.h"

namespace flashnas {

inline constexpr int kArchFormat = 1;

// The sizes flashnas counts (parameters, FLOPs, state bytes in int64 without
// overflow): far beyond any small language model, refused with the limit
// named beyond them.
inline constexpr int64_t kMaxDModel = int64_t(1) << 20;      // d_model
inline constexpr int64_t kMaxHyperparameter = int64_t(1) << 20;  // any integer hyperparameter of a sublayer
inline constexpr int64_t kMaxSublayers = int64_t(1) << 14;   // layers
inline constexpr int64_t kMaxMetaTokens = int64_t(1) << 16;  // n_meta_tokens
inline constexpr int64_t kMaxVocab = (int64_t(1) << 31) - 1; // vocab_size (token ids are int32)
inline constexpr int64_t kMaxContext = int64_t(1) << 32;     // tokens of context (prompt, generate, --context)
inline constexpr int64_t kMaxBatch = int64_t(1) << 20;       // sequences in a workload

struct LayerSpec {
  std::string type;  // registered operator name
  json hp;           // canonical hyperparameters (object, without "type")
};

struct ArchSpec {
  std::string name;
  int64_t vocab_size = 256;
  int64_t d_model = 0;
  int64_t n_meta_tokens = 0;
  bool tie_embeddings = false;
  double norm_eps = 1e-5;
  std::vector<LayerSpec> layers;

  // Validates and canonicalises a document. `source` names it in messages
  // (a file path, or e.g. "trial 12"). Throws InputError naming the field.
  static ArchSpec from_json(const json& doc, const std::string& source);
  // Validates and canonicalises one layer object ({"type": ..., hyperparameters}).
  // `where` is its field path in messages (e.g. "layers[3]").
  static LayerSpec parse_layer(const json& layer, int64_t d_model, const std::string& source,
                               const std::string& where);
  static ArchSpec parse(const std::string& text, const std::string& source);
  static ArchSpec load(const std::filesystem::path& path);

  // Canonical document (keys sorted, defaults filled).
  json to_json() const;
  // Compact canonical text without "name": what the hash covers.
  std::string canonical_text() const;
  // SHA-256 of canonical_text(): stable across runs, machines and key order.
  std::string hash() const;
  std::string short_hash() const { return hash().substr(0, 12); }
  // Writes the canonical document, pretty-printed, atomically.
  void save(const std::filesystem::path& path) const;
};

}  // namespace flashnas
