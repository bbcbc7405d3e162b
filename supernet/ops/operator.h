// The operator interface every sublayer implements (see docs/design.md,
// "Extension points"). An operator maps the normalised residual stream to an update
// of the same shape; the pre-norm and the residual add live in HybridLM.
//
// Shapes: B batch, T sequence length, d = d_model.
//   forward: x [B, T, d] -> [B, T, d]
//   step:    x [B, d]    -> [B, d]
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace flashnas {

// Decode state of one sublayer. `buffers` are op-specific and documented in
// each op's header; they are preallocated by init_state at their maximum size
// so that decoding never reallocates (a requirement for CUDA graphs).
struct OpState {
  std::map<std::string, torch::Tensor> buffers;
  int64_t pos = 0;          // tokens consumed so far (absolute position of the next token)
  int64_t max_context = 0;  // capacity in tokens (only attention caches are bounded by it)
  // Graph-safe decoding: when defined, int64 [1] on the state's device holding
  // the position of the next token. step() then reads the position from it
  // alone and keeps every shape fixed (attention reads its whole preallocated
  // cache under a mask computed from it), so one captured CUDA graph serves
  // every position. step() does not advance it: its owner does (HybridLM, once
  // per step for all layers). `pos` is still advanced on the host.
  torch::Tensor pos_dev;
};

// Deep copy of a state (tensors cloned), e.g. to branch a decode.
inline OpState clone_state(const OpState& s) {
  OpState c;
  c.pos = s.pos;
  c.max_context = s.max_context;
  if (s.pos_dev.defined()) c.pos_dev = s.pos_dev.clone();
  for (const auto& [name, t] : s.buffers) c.buffers[name] = t.clone();
  return c;
}

class Operator : public torch::nn::Module {
 public:
  // Parallel form for training and prefill. With `state` == nullptr the
  // sequence starts at position 0 with an empty state. With a state, the
  // sequence continues from state->pos and the state is advanced in place to
  // the state after the last token.
  virtual torch::Tensor forward(const torch::Tensor& x, OpState* state) = 0;

  // One token against the state (advanced in place). x: [B, d] -> [B, d].
  virtual torch::Tensor step(const torch::Tensor& x, OpState& state) = 0;

  // Fresh state for `batch` sequences of up to `max_context` tokens, on the
  // device of this operator's parameters; `dtype` is the activation dtype
  // (recurrent states are kept in at least float32 regardless).
  virtual OpState init_state(int64_t batch, int64_t max_context, torch::ScalarType dtype) const = 0;
};

// Static accounting of one operator, computed from its config alone (no
// weights are allocated), per sequence (batch 1).
// a * b * c, or INT64_MAX when that does not fit (accounting refuses it).
inline int64_t mul_saturated(int64_t a, int64_t b, int64_t c = 1) {
  int64_t ab = 0, abc = 0;
  if (__builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc)) return INT64_MAX;
  return abc;
}

struct OpCost {
  int64_t params = 0;                  // parameters of the operator (its pre-norm excluded)
  double proj_flops_per_token = 0;     // 2 x (matrix parameters): the projections, any phase
  // Mixer-core FLOPs per token (score/state arithmetic beyond the projections):
  std::function<double(int64_t t)> core_flops_decode;   // decoding the token at context t (t keys incl. itself)
  std::function<double(int64_t T)> core_flops_prefill;  // averaged over a prefill of T tokens
  // Decode-state bytes at context t when activations are `act_bytes` wide.
  std::function<int64_t(int64_t t, int64_t act_bytes)> state_bytes;

  double flops_decode(int64_t t) const { return proj_flops_per_token + (core_flops_decode ? core_flops_decode(t) : 0.0); }
  double flops_prefill(int64_t T) const { return proj_flops_per_token + (core_flops_prefill ? core_flops_prefill(T) : 0.0); }
  int64_t state(int64_t t, int64_t act_bytes) const { return state_bytes ? state_bytes(t, act_bytes) : 0; }
};

}  // namespace flashnas
