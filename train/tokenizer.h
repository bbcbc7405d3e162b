// Tokenizers: byte-level (vocabulary 256, the default) and SentencePiece.
// A tokenizer travels with every token file and checkpoint as a JSON
// description ({"type": "byte"} or {"type": "sentencepiece", "model": FILE,
// "vocab_size": V}) plus, for SentencePiece, the model file beside it.
#pragma once
#include "common/json_io.h"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flashnas {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string type() const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // Description for token files and checkpoints; `model_name` is the file
  // name a SentencePiece model is stored under in the same directory.
  virtual json describe(const std::string& model_name = "tokenizer.model") const = 0;
  // Writes whatever files the description refers to into `dir` (atomically).
  virtual void save_files(const std::filesystem::path& dir, const std::string& model_name = "tokenizer.model") const = 0;
};

// Byte-level: token i is byte i; decoding is exact.
std::unique_ptr<Tokenizer> make_byte_tokenizer();

// Loads a trained SentencePiece model file (InputError naming it if unreadable).
std::unique_ptr<Tokenizer> load_sentencepiece(const std::filesystem::path& model_file);

// Rebuilds a tokenizer from its description; relative model paths resolve
// against `dir`.
std::unique_ptr<Tokenizer> tokenizer_from_json(const json& desc, const std::filesystem::path& dir,
                                               const std::string& source);

// Trains a SentencePiece model (unigram) on the given text files and writes
// `out_model` atomically. Throws InputError for a vocabulary the corpus cannot
// support, naming the input.
void train_sentencepiece(const std::vector<std::filesystem::path>& inputs, int64_t vocab_size,
                         const std::filesystem::path& out_model);

}  // namespace flashnas
