// Model folders written by the trainer and by `flashnas export`:
//   model.safetensors  parameters under HybridLM's names (hybrid_lm.h)
//   config.json        {"format": "flashnas.checkpoint/1", "arch": ArchSpec,
//                       "tokenizer": {...}, "dtype": ..., ...}
//   tokenizer.model    SentencePiece model, when the tokenizer is one
// Loading checks every tensor name and shape against the architecture and
// says exactly what does not match.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "supernet/hybrid_lm.h"
#include "train/tokenizer.h"

namespace flashnas {

// The model's parameters by name.
std::map<std::string, torch::Tensor> named_tensors(HybridLMImpl& model);
// Copies tensors into the model; InputError naming `where` and the tensor
// for a missing or extra tensor or a shape mismatch.
void load_into(HybridLMImpl& model, const std::map<std::string, torch::Tensor>& src, const std::string& where);

struct LoadedModel {
  ArchSpec arch;
  HybridLM model{nullptr};
  std::shared_ptr<Tokenizer> tokenizer;
  json config;
};

// Loads a model folder (CPU, float32). InputError naming the file on any problem.
LoadedModel load_model_dir(const std::filesystem::path& dir);

}  // namespace flashnas
