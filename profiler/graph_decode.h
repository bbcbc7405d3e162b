// Whole-model decoding with positions on the device, as a graph-serving
// runtime runs it: per batch size one cache of fixed capacity and one decode
// step captured once as a CUDA graph; the step reads its position (RoPE,
// the KV slot, the sliding window's ring slot, the visible keys) from an
// int64 tensor on the device and advances it, and feeds its argmax token
// back, so n replays decode n tokens without the host. Without graphs (the
// CPU) the same step runs eagerly with the host-side positions frozen at the
// values a capture would have baked in, so the CPU tests catch a step that
// reads a position from the host; the results equal the eager decode's.
//
// Shapes: prompt [B, P] int64 (P >= 0), first token [B] int64, logits
// [B, vocab_size] in the activation dtype. Capacity: max_tokens user tokens
// per sequence (meta tokens come on top). Every attention step reads the
// whole capacity (masked), so a step costs the same at every position.
#pragma once
#include <cstdint>
#include <map>
#include <memory>

#include "supernet/hybrid_lm.h"

namespace flashnas {

class DeviceDecoder {
 public:
  // cuda_graphs: capture each batch size's step (needs a CUDA model and a
  // flashnas built with FLASHNAS_CUDA; InputError otherwise).
  DeviceDecoder(HybridLM model, int64_t max_tokens, torch::ScalarType dtype, bool cuda_graphs);
  ~DeviceDecoder();

  // Starts a sequence batch of prompt.size(0) sequences: empties that batch
  // size's cache (made, and its step captured, on first use), prefills the
  // prompt eagerly and sets the next token to the prompt's argmax. With an
  // empty prompt (P == 0) `first` [B] is the first token fed to decode.
  void start(const torch::Tensor& prompt, const torch::Tensor& first = {});

  // n decode steps of batch size B (graph replays, or eager steps), queued
  // without waiting for the device. Throws when the capacity would be passed.
  void decode(int64_t batch, int64_t n);

  // After decode: the last step's logits, and the token it chose (the next
  // input). Valid once the device has finished (synchronise first on a GPU).
  const torch::Tensor& logits(int64_t batch) const;
  const torch::Tensor& token(int64_t batch) const;
  // Positions consumed (meta tokens included), counted on the host.
  int64_t position(int64_t batch) const;
  // Captured graphs so far: one per batch size used.
  int64_t captures() const { return captures_; }

 private:
  struct Batch;
  Batch& batch(int64_t b);
  Batch& find(int64_t b) const;

  HybridLM model_;
  int64_t max_tokens_;
  torch::ScalarType dtype_;
  bool graphs_;
  int64_t captures_ = 0;
  std::map<int64_t, std::unique_ptr<Batch>> batches_;
};

}  // namespace flashnas
