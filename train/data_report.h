// What `flashnas data` reports about token files, as typed results the
// command prints as text or JSON: the summary of a prepare run, and a token
// file's description (header, the split by document, unigram entropy, task
// lengths).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/task_data.h"
#include "train/task_stats.h"

namespace flashnas {

using json = nlohmann::json;

// What prepare_token_file (training_data.h) wrote.
struct PrepareSummary {
  std::string out;                  // the token file
  int64_t docs = 0, bytes = 0, tokens = 0;
  json tokenizer;                   // the tokenizer's description, as the token file records it
  std::string type;                 // "byte" | "sentencepiece"
  int64_t vocab_size = 0;
  std::optional<TaskCounts> task;   // task data only
  std::vector<std::string> skipped_reasons;  // the first few bad records skipped, "FILE:LINE: ..."
  json to_json() const;
  std::string text() const;         // one or more lines
};

// A token file described (token_file_info).
struct TokenFileInfo {
  struct Part {
    int64_t docs = 0, tokens = 0, bytes = 0;
  };
  std::string file;
  int64_t tokens = 0, docs = 0, vocab_size = 0, token_bytes = 0;
  json meta;                        // the file's own metadata (source, tokenizer, task)
  double val_fraction = 0;
  uint64_t seed = 0;
  Part train, val;                  // the split by document
  double unigram_bits_per_token = 0, unigram_bits_per_byte = 0;  // of the training split
  std::optional<TaskStats> task_lengths;  // task files only
  json to_json() const;
  std::string text() const;
};

// Describes the token file at `path` split by (val_fraction, seed); unigram
// entropy over the training split (its completion tokens for task data).
// InputError for a bad file.
TokenFileInfo token_file_info(const std::string& path, double val_fraction, uint64_t seed);

}  // namespace flashnas
