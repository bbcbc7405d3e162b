// Training and validation streams over a token file, split by document.
//
// Split: document d goes to validation when a hash of (seed, d) falls below
// val_fraction; at least one document lands on each side (the split is an
// error if there is only one document). Each split's documents are
// concatenated into one stream; a training window of seq_len + 1 tokens
// starts at a position drawn from a counter-based generator keyed by
// (seed, step, row), so batch k is the same on every run and after a resume.
// Validation uses fixed, evenly spaced windows.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/splitmix.h"

#include "train/token_file.h"

namespace flashnas {

struct SplitSummary {
  int64_t docs = 0, tokens = 0, bytes = 0;
};

class TokenDataset {
 public:
  // Checks every token id first (TokenFile::check_ids): a damaged file is
  // refused before anything trains on it or records a result.
  TokenDataset(std::shared_ptr<const TokenFile> file, double val_fraction, uint64_t seed);

  // Tokens [B, T + 1] (int64) for training step `step`; inputs are [:, :T],
  // targets [:, 1:]. InputError when the split is shorter than one window.
  torch::Tensor train_batch(int64_t step, int64_t batch, int64_t seq_len) const;
  // The i-th fixed validation batch (same shape).
  torch::Tensor val_batch(int64_t index, int64_t batch, int64_t seq_len) const;
  // How many distinct validation windows of seq_len + 1 the split holds.
  int64_t val_windows(int64_t seq_len) const;

  const SplitSummary& train() const { return train_; }
  const SplitSummary& val() const { return val_; }
  // UTF-8 bytes per token in the validation split (for bits per byte).
  double val_bytes_per_token() const { return static_cast<double>(val_.bytes) / static_cast<double>(val_.tokens); }
  // Unigram entropy of the training split in bits per token, and per byte.
  double unigram_bits_per_token() const;
  double unigram_bits_per_byte() const;
  const TokenFile& file() const { return *file_; }
  uint64_t seed() const { return seed_; }
  double val_fraction() const { return val_fraction_; }

 private:
  struct Segment {
    int64_t begin, end, stream_begin;  // file range and its start in the split's stream
  };
  void fill(const std::vector<Segment>& segs, int64_t stream_pos, int64_t n, int64_t* out) const;
  std::shared_ptr<const TokenFile> file_;
  double val_fraction_;
  uint64_t seed_;
  std::vector<Segment> train_segs_, val_segs_;
  SplitSummary train_, val_;
};

}  // namespace flashnas
