// Decoding text from a model folder with its recurrent cache (`flashnas
// generate`): one prefill of the prompt, then one step per new token.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/checkpoint.h"

namespace flashnas {

struct GenerateOptions {
  int64_t tokens = 64;       // new tokens (> 0)
  double temperature = 0;    // 0: greedy (argmax); else sampling from softmax(logits / temperature)
  uint64_t seed = 0;         // sampling seed
};

struct Generated {
  std::vector<int32_t> prompt_ids, ids;  // the prompt's tokens and the new ones
  std::string text;                      // the new tokens decoded
  double prefill_ms = 0;                 // the prompt's prefill (ms)
  double decode_ms_per_token = 0;        // each step after the first new token (ms)
};

// InputError naming the flag for an empty prompt or options out of range.
Generated generate_text(const LoadedModel& m, const std::string& prompt, const GenerateOptions& o);

}  // namespace flashnas
