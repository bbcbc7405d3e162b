// HybridLM: the model any ArchSpec describes.
//
//   tokens [B, T] (int64, values in [0, vocab_size))
//   -> embed_tokens [B, T, d] (meta tokens [M, d] prepended -> [B, M + T, d])
//   -> for each sublayer i: x <- x + op_i(norm_i(x))
//   -> final norm -> lm_head -> logits [B, T, vocab_size] (meta positions dropped)
//
// Parameter names (stable; checkpoints use them):
//   embed_tokens.weight [V, d]       meta_tokens [M, d] (only when M > 0)
//   layers.{i}.norm.weight [d]       layers.{i}.{type}.<operator parameters>
//   norm.weight [d]                  lm_head.weight [V, d] (absent when tied)
//
// Device- and dtype-agnostic: move with ->to(device, dtype); norms, softmax
// and recurrent states run in float32 or wider whatever the weight dtype.
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <vector>

#include "supernet/arch_spec.h"
#include "supernet/ops/operator.h"
#include "supernet/rms_norm.h"

namespace flashnas {

// One pre-norm residual sublayer: x + op(norm(x)).
class SublayerImpl : public torch::nn::Module {
 public:
  SublayerImpl(const LayerSpec& spec, int64_t d_model, double eps);
  torch::Tensor forward(const torch::Tensor& x, OpState* state) { return x + op->forward(norm->forward(x), state); }
  torch::Tensor step(const torch::Tensor& x, OpState& state) { return x + op->step(norm->forward(x), state); }

  RMSNorm norm{nullptr};
  std::shared_ptr<Operator> op;
};
TORCH_MODULE(Sublayer);

// Decode cache of a whole model: one state per sublayer.
struct ModelCache {
  std::vector<OpState> layers;
  int64_t pos = 0;          // positions consumed, meta tokens included
  int64_t max_context = 0;  // capacity in positions, meta tokens included
  // Graph-safe decoding (see OpState::pos_dev): int64 [1] on the model's
  // device, shared by every layer's state; undefined for host positions.
  torch::Tensor pos_dev;
};

class HybridLMImpl : public torch::nn::Module {
 public:
  explicit HybridLMImpl(const ArchSpec& spec);

  // Full parallel forward from position 0: tokens [B, T] -> logits [B, T, V].
  torch::Tensor forward(const torch::Tensor& tokens);

  // Empty cache for `batch` sequences of up to `max_tokens` user tokens
  // (meta tokens are added on top), activations of `dtype`.
  ModelCache init_cache(int64_t batch, int64_t max_tokens, torch::ScalarType dtype) const;

  // Prefill: runs tokens [B, T] through a fresh cache sized for `max_tokens`
  // user tokens in total and returns logits [B, T, V] and the cache.
  std::pair<torch::Tensor, ModelCache> prefill(const torch::Tensor& tokens, int64_t max_tokens);

  // Continues a cache with tokens [B, T] (parallel form, chunked prefill):
  // logits [B, T, V]. Meta tokens are prepended when the cache is empty.
  torch::Tensor extend(const torch::Tensor& tokens, ModelCache& cache);

  // One decode step: token [B] -> logits [B, V]. With device positions
  // (cache.pos_dev defined) the step is graph-safe: no host value decides a
  // kernel or a shape, and the step advances pos_dev on the device as well as
  // cache.pos on the host. A CUDA graph of it replays only the device part;
  // the replayer keeps the host count (see profiler/graph_decode.h).
  torch::Tensor step(const torch::Tensor& token, ModelCache& cache);

  // Switches `cache` to device positions: one int64 [1] tensor holding
  // cache.pos, shared by all layers. Cheap; call before the first step.
  void use_device_positions(ModelCache& cache) const;

  // Empties `cache` in place for a new sequence: buffers zeroed (recurrent
  // states start from zero), positions 0 on the host and the device. The
  // tensors stay the same objects, so graphs captured on them stay valid.
  static void reset_cache(ModelCache& cache);

  const ArchSpec& spec() const { return spec_; }

  // The model's ends, usable on their own (the profiler times them):
  // tokens [B, T] -> [B, (M +) T, d] with meta tokens when with_meta;
  // h [..., d] -> final norm -> LM head -> [..., V].
  torch::Tensor embed(const torch::Tensor& tokens, bool with_meta);
  torch::Tensor head(const torch::Tensor& h);

  torch::nn::Embedding embed_tokens{nullptr};
  torch::Tensor meta_tokens;  // [M, d], undefined when M == 0
  torch::nn::ModuleList layers{nullptr};
  std::vector<Sublayer> sublayers;
  RMSNorm norm{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_embeddings

 private:
  ArchSpec spec_;
};
TORCH_MODULE(HybridLM);

}  // namespace flashnas
