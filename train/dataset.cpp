#include "train/dataset.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace flashnas {

TokenDataset::TokenDataset(std::shared_ptr<const TokenFile> file, double val_fraction, uint64_t seed)
    : file_(std::move(file)), val_fraction_(val_fraction), seed_(seed) {
  if (!(val_fraction > 0 && val_fraction < 1)) {
    throw InputError("--val-fraction: must be between 0 and 1 (exclusive), got " + std::to_string(val_fraction));
  }
  file_->check_ids();
  const int64_t D = file_->num_docs();
  if (D < 2) {
    throw InputError(file_->path().string() + ": holds " + std::to_string(D) +
                     " document(s); a train/validation split by document needs at least 2");
  }
  std::vector<bool> is_val(D);
  for (int64_t d = 0; d < D; ++d) {
    const double u = static_cast<double>(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(d))) >> 11) * 0x1.0p-53;
    is_val[d] = u < val_fraction;
  }
  // Never leave a side empty: move the last document to validation, or the first to training.
  if (std::none_of(is_val.begin(), is_val.end(), [](bool b) { return b; })) is_val[D - 1] = true;
  if (std::all_of(is_val.begin(), is_val.end(), [](bool b) { return b; })) is_val[0] = false;
  for (int64_t d = 0; d < D; ++d) {
    const int64_t b = file_->doc_begin(d), e = file_->doc_end(d);
    if (e == b) continue;
    auto& segs = is_val[d] ? val_segs_ : train_segs_;
    auto& sum = is_val[d] ? val_ : train_;
    segs.push_back({b, e, sum.tokens});
    sum.docs += 1;
    sum.tokens += e - b;
    sum.bytes += file_->doc_bytes(d);
  }
}

void TokenDataset::fill(const std::vector<Segment>& segs, int64_t pos, int64_t n, int64_t* out) const {
  // First segment containing pos (segments are sorted by stream_begin).
  auto it = std::upper_bound(segs.begin(), segs.end(), pos,
                             [](int64_t p, const Segment& s) { return p < s.stream_begin; });
  --it;
  while (n > 0) {
    const int64_t off = pos - it->stream_begin;
    const int64_t take = std::min(n, (it->end - it->begin) - off);
    file_->read(it->begin + off, take, out);
    out += take;
    n -= take;
    pos += take;
    ++it;
  }
}

torch::Tensor TokenDataset::train_batch(int64_t step, int64_t batch, int64_t seq_len) const {
  const int64_t W = seq_len + 1;
  if (train_.tokens < W) {
    throw InputError(file_->path().string() + ": training split has " + std::to_string(train_.tokens) +
                     " tokens, fewer than one window of --seq-len + 1 = " + std::to_string(W));
  }
  auto out = torch::empty({batch, W}, torch::kLong);
  auto* p = out.data_ptr<int64_t>();
  const uint64_t span = static_cast<uint64_t>(train_.tokens - W + 1);
  for (int64_t r = 0; r < batch; ++r) {
    const uint64_t key = splitmix64(seed_ ^ splitmix64(0x5eed0000ULL + static_cast<uint64_t>(step))) +
                         static_cast<uint64_t>(r);
    fill(train_segs_, static_cast<int64_t>(splitmix64(key) % span), W, p + r * W);
  }
  return out;
}

int64_t TokenDataset::val_windows(int64_t seq_len) const { return val_.tokens / (seq_len + 1); }

torch::Tensor TokenDataset::val_batch(int64_t index, int64_t batch, int64_t seq_len) const {
  const int64_t W = seq_len + 1, n = val_windows(seq_len);
  if (n < 1) {
    throw InputError(file_->path().string() + ": validation split has " + std::to_string(val_.tokens) +
                     " tokens, fewer than one window of --seq-len + 1 = " + std::to_string(W) +
                     "; raise --val-fraction or lower --seq-len");
  }
  auto out = torch::empty({batch, W}, torch::kLong);
  auto* p = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < batch; ++r) {
    // Windows are spread evenly over the split; batches wrap around when there are few.
    const int64_t w = (index * batch + r) % n;
    fill(val_segs_, w * W, W, p + r * W);
  }
  return out;
}

double TokenDataset::unigram_bits_per_token() const {
  std::vector<int64_t> counts(static_cast<size_t>(file_->vocab_size()), 0);
  std::vector<int64_t> buf(1 << 16);
  for (const auto& s : train_segs_) {
    for (int64_t b = s.begin; b < s.end; b += static_cast<int64_t>(buf.size())) {
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(buf.size()), s.end - b);
      file_->read(b, n, buf.data());
      for (int64_t i = 0; i < n; ++i) counts[static_cast<size_t>(buf[i])] += 1;
    }
  }
  double h = 0;
  const double total = static_cast<double>(train_.tokens);
  for (int64_t c : counts) {
    if (c > 0) h -= (static_cast<double>(c) / total) * std::log2(static_cast<double>(c) / total);
  }
  return h;
}

double TokenDataset::unigram_bits_per_byte() const {
  return unigram_bits_per_token() * static_cast<double>(train_.tokens) / static_cast<double>(train_.bytes);
}

}  // namespace flashnas
