// Training and validation streams over a token file, split by document.
//
// Split: document d goes to validation when a hash of (seed, d) falls below
// val_fraction; at least one document lands on each side (the split is an
// error if there is only one document). Each split's documents are
// concatenated into one stream; a training window of seq_len + 1 tokens
// starts at a position drawn from a counter-based generator keyed by
// (seed, step, row), so batch k is the same on every run and after a resume.
// Validation uses fixed, evenly spaced windows.
//
// Task data (a token file with a completion mask, train/task_data.h): a
// training window starts at a record's first token (drawn the same way), so
// every completion in it follows its prompt; records are packed one after
// another. Validation windows pack whole records from a record's start
// (a record longer than the window is cut), so each validation record is
// scored once, from a fresh state. The batches come with target weights:
// 1 where the predicted token is a completion token (within the window's
// whole records, for validation), else 0; losses average over those.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "common/splitmix.h"

#include "train/token_file.h"

namespace flashnas {

struct SplitSummary {
  int64_t docs = 0, tokens = 0, bytes = 0;
  int64_t completion_tokens = 0, completion_bytes = 0;  // task data only
};

class TokenDataset {
 public:
  // Checks every token id first (TokenFile::check_ids): a damaged file is
  // refused before anything trains on it or records a result.
  TokenDataset(std::shared_ptr<const TokenFile> file, double val_fraction, uint64_t seed);

  // Tokens [B, T + 1] (int64) for training step `step`; inputs are [:, :T],
  // targets [:, 1:]. InputError when the split is shorter than one window.
  // For task data, `weights` (when given) receives the target weights
  // [B, T] (float32, 0 or 1); for text it is left undefined.
  torch::Tensor train_batch(int64_t step, int64_t batch, int64_t seq_len, torch::Tensor* weights = nullptr) const;
  // The i-th fixed validation batch (same shape; windows wrap around when
  // there are fewer than the batches ask for).
  torch::Tensor val_batch(int64_t index, int64_t batch, int64_t seq_len, torch::Tensor* weights = nullptr) const;
  // How many distinct validation windows of seq_len + 1 the split holds.
  int64_t val_windows(int64_t seq_len) const;
  // True for task data: losses count completion tokens only.
  bool task() const { return file_->has_completion_mask(); }

  // The documents (records) of the validation split, in file order.
  const std::vector<int64_t>& val_docs() const { return val_docs_; }
  const SplitSummary& train() const { return train_; }
  const SplitSummary& val() const { return val_; }
  // UTF-8 bytes per token in the validation split (for bits per byte); for
  // task data, completion bytes per completion token.
  double val_bytes_per_token() const;
  // Unigram entropy of the training split in bits per token, and per byte
  // (task data: of its completion tokens, per completion byte).
  double unigram_bits_per_token() const;
  double unigram_bits_per_byte() const;
  const TokenFile& file() const { return *file_; }
  uint64_t seed() const { return seed_; }
  double val_fraction() const { return val_fraction_; }

 private:
  struct Segment {
    int64_t begin, end, stream_begin;  // file range and its start in the split's stream
  };
  // Copies n stream tokens (and their mask) from stream_pos; past the
  // stream's end, token 0 with mask 0.
  void fill(const std::vector<Segment>& segs, int64_t stream_pos, int64_t n, int64_t* out, uint8_t* mask) const;
  // Task validation windows: (stream start, tokens scored) for seq_len + 1.
  std::vector<std::pair<int64_t, int64_t>> task_val_windows(int64_t seq_len) const;
  std::shared_ptr<const TokenFile> file_;
  double val_fraction_;
  uint64_t seed_;
  std::vector<Segment> train_segs_, val_segs_;
  std::vector<int64_t> train_starts_, val_starts_;
  std::vector<int64_t> val_docs_;  // stream position of each record (task data)
  SplitSummary train_, val_;
};

}  // namespace flashnas
