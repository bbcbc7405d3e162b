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
    (is_val[d] ? val_starts_ : train_starts_).push_back(sum.tokens);
    if (is_val[d]) val_docs_.push_back(d);
    segs.push_back({b, e, sum.tokens});
    sum.docs += 1;
    sum.tokens += e - b;
    sum.bytes += file_->doc_bytes(d);
    sum.completion_tokens += file_->doc_completion_tokens(d);
    sum.completion_bytes += file_->doc_completion_bytes(d);
  }
}

void TokenDataset::fill(const std::vector<Segment>& segs, int64_t pos, int64_t n, int64_t* out, uint8_t* mask) const {
  // First segment containing pos (segments are sorted by stream_begin).
  auto it = std::upper_bound(segs.begin(), segs.end(), pos,
                             [](int64_t p, const Segment& s) { return p < s.stream_begin; });
  --it;
  while (n > 0 && it != segs.end()) {
    const int64_t off = pos - it->stream_begin;
    const int64_t take = std::min(n, (it->end - it->begin) - off);
    file_->read(it->begin + off, take, out);
    if (mask) file_->read_mask(it->begin + off, take, mask), mask += take;
    out += take;
    n -= take;
    pos += take;
    ++it;
  }
  std::fill(out, out + n, 0);
  if (mask) std::fill(mask, mask + n, 0);
}

double TokenDataset::val_bytes_per_token() const {
  if (task()) return static_cast<double>(val_.completion_bytes) / static_cast<double>(std::max<int64_t>(1, val_.completion_tokens));
  return static_cast<double>(val_.bytes) / static_cast<double>(val_.tokens);
}

std::vector<std::pair<int64_t, int64_t>> TokenDataset::task_val_windows(int64_t seq_len) const {
  // Whole records from a record's start while they fit in seq_len + 1 tokens;
  // a record longer than that is a window of its own, cut.
  const int64_t W = seq_len + 1;
  std::vector<std::pair<int64_t, int64_t>> out;
  const size_t R = val_starts_.size();
  size_t r = 0;
  while (r < R) {
    const int64_t start = val_starts_[r];
    auto end_of = [&](size_t k) { return k + 1 < R ? val_starts_[k + 1] : val_.tokens; };  // record k's end
    size_t next = r + 1;
    while (next < R && end_of(next) - start <= W) ++next;
    const int64_t end = end_of(next - 1);
    out.emplace_back(start, std::min(W, end - start));
    r = next;
  }
  return out;
}

namespace {
// Target weights [B, T] from the window masks [B, T + 1]: the mask of each target.
torch::Tensor target_weights(const std::vector<uint8_t>& mask, int64_t B, int64_t W) {
  auto w = torch::empty({B, W - 1}, torch::kFloat32);
  auto* p = w.data_ptr<float>();
  for (int64_t r = 0; r < B; ++r) {
    for (int64_t t = 0; t + 1 < W; ++t) p[r * (W - 1) + t] = mask[size_t(r * W + t + 1)];
  }
  return w;
}
}  // namespace

torch::Tensor TokenDataset::train_batch(int64_t step, int64_t batch, int64_t seq_len, torch::Tensor* weights) const {
  const int64_t W = seq_len + 1;
  if (train_.tokens < W) {
    throw InputError(file_->path().string() + ": training split has " + std::to_string(train_.tokens) +
                     " tokens, fewer than one window of --seq-len + 1 = " + std::to_string(W));
  }
  auto out = torch::empty({batch, W}, torch::kLong);
  auto* p = out.data_ptr<int64_t>();
  const bool masked = task();
  std::vector<uint8_t> mask(masked ? size_t(batch * W) : 0);
  const uint64_t span = static_cast<uint64_t>(train_.tokens - W + 1);
  // Task data: windows start at records that have a whole window after them.
  const uint64_t records = static_cast<uint64_t>(
      std::upper_bound(train_starts_.begin(), train_starts_.end(), train_.tokens - W) - train_starts_.begin());
  for (int64_t r = 0; r < batch; ++r) {
    const uint64_t key = splitmix64(seed_ ^ splitmix64(0x5eed0000ULL + static_cast<uint64_t>(step))) +
                         static_cast<uint64_t>(r);
    const int64_t pos = masked ? train_starts_[size_t(splitmix64(key) % records)] : static_cast<int64_t>(splitmix64(key) % span);
    fill(train_segs_, pos, W, p + r * W, masked ? mask.data() + r * W : nullptr);
  }
  if (weights) *weights = masked ? target_weights(mask, batch, W) : torch::Tensor();
  return out;
}

int64_t TokenDataset::val_windows(int64_t seq_len) const {
  return task() ? int64_t(task_val_windows(seq_len).size()) : val_.tokens / (seq_len + 1);
}

torch::Tensor TokenDataset::val_batch(int64_t index, int64_t batch, int64_t seq_len, torch::Tensor* weights) const {
  if (task()) {
    const int64_t W = seq_len + 1;
    const auto windows = task_val_windows(seq_len);
    auto out = torch::empty({batch, W}, torch::kLong);
    std::vector<uint8_t> mask(size_t(batch * W));
    for (int64_t r = 0; r < batch; ++r) {
      const auto& [start, scored] = windows[size_t((index * batch + r) % int64_t(windows.size()))];
      fill(val_segs_, start, W, out.data_ptr<int64_t>() + r * W, mask.data() + r * W);
      std::fill(mask.begin() + r * W + scored, mask.begin() + (r + 1) * W, 0);  // the next record's tokens: its own window
    }
    if (weights) *weights = target_weights(mask, batch, W);
    return out;
  }
  if (weights) *weights = torch::Tensor();
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
    fill(val_segs_, w * W, W, p + r * W, nullptr);
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
      std::vector<uint8_t> mask(size_t(n), 1);
      if (task()) file_->read_mask(b, n, mask.data());
      for (int64_t i = 0; i < n; ++i) counts[static_cast<size_t>(buf[i])] += mask[size_t(i)];
    }
  }
  double h = 0;
  const double total = static_cast<double>(task() ? train_.completion_tokens : train_.tokens);
  for (int64_t c : counts) {
    if (c > 0) h -= (static_cast<double>(c) / total) * std::log2(static_cast<double>(c) / total);
  }
  return h;
}

double TokenDataset::unigram_bits_per_byte() const {
  if (task()) {
    return unigram_bits_per_token() * static_cast<double>(train_.completion_tokens) / static_cast<double>(train_.completion_bytes);
  }
  return unigram_bits_per_token() * static_cast<double>(train_.tokens) / static_cast<double>(train_.bytes);
}

}  // namespace flashnas
