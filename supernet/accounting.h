// Static accounting of a whole ArchSpec: parameters, FLOPs per token and
// decode-state bytes, per sublayer and in total. Computed from the spec alone
// (nothing is allocated), so it works for billion-parameter specs.
//
// Conventions: batch 1; a matrix-vector product of an [m, n] matrix is 2mn
// FLOPs; norms, activations and the embedding lookup are not counted. The
// context t counts user tokens; meta tokens, when present, are added to every
// context (attention over t tokens sees M + t keys).
#pragma once
#include <string>
#include <vector>

#include "supernet/arch_spec.h"

namespace flashnas {

struct LayerAccount {
  int64_t index = 0;
  std::string type;
  std::string summary;            // key hyperparameters
  int64_t params = 0;             // operator + its pre-norm
  double flops_decode = 0;        // per token, decoding at context t
  double flops_prefill = 0;       // per token, averaged over a prefill of t tokens
  int64_t state_bytes = 0;        // decode state at context t
};

struct ModelAccount {
  int64_t context = 0;            // t (user tokens)
  int64_t act_bytes = 0;          // bytes per activation element used for the state
  int64_t params_total = 0;
  int64_t params_embedding = 0;   // embed_tokens
  int64_t params_meta = 0;        // meta_tokens
  int64_t params_head = 0;        // lm_head (0 when tied)
  int64_t params_layers = 0;      // all sublayers, norms included
  int64_t params_final_norm = 0;
  double flops_per_token_decode = 0;
  double flops_per_token_prefill = 0;
  int64_t state_bytes = 0;
  std::vector<LayerAccount> layers;
};

ModelAccount account(const ArchSpec& spec, int64_t context, int64_t act_bytes);

// `flashnas arch show --json`: the spec's identity, the account and one object per sublayer.
json account_json(const ArchSpec& spec, const ModelAccount& m, const std::string& dtype);

}  // namespace flashnas
