#include "train/data_report.h"

#include <memory>

#include "common/format.h"
#include "train/dataset.h"
#include "train/task_data.h"
#include "train/task_stats.h"
#include "train/token_file.h"

namespace flashnas {
namespace {

std::string printf_string(const char* format, auto... args) {
  const int n = std::snprintf(nullptr, 0, format, args...);
  std::string s(static_cast<size_t>(n), '\0');
  std::snprintf(s.data(), s.size() + 1, format, args...);
  return s;
}

std::string length_line(const char* what, const LengthStats& l) {
  return printf_string("%-10s tokens: p50 %lld, p90 %lld, p99 %lld, max %lld, mean %.1f\n", what, static_cast<long long>(l.p50),
                       static_cast<long long>(l.p90), static_cast<long long>(l.p99), static_cast<long long>(l.max), l.mean);
}

}  // namespace

json PrepareSummary::to_json() const {
  return json{{"out", out},
              {"docs", docs},
              {"bytes", bytes},
              {"tokens", tokens},
              {"tokenizer", tokenizer},
              {"type", type},
              {"vocab_size", vocab_size},
              {"task", task ? task->to_json() : json(nullptr)},
              {"skipped_reasons", skipped_reasons}};
}

std::string PrepareSummary::text() const {
  const std::string counts = with_commas(bytes) + " bytes -> " + with_commas(tokens) + " tokens (" + type + ", vocabulary " +
                             std::to_string(vocab_size) + ")";
  if (!task) return printf_string("%s: %lld documents, %s\n", out.c_str(), static_cast<long long>(docs), counts.c_str());
  std::string text = printf_string("%s: %lld task records (%lld prompt/completion, %lld chat), %s\n", out.c_str(),
                                   static_cast<long long>(task->records), static_cast<long long>(task->prompt_completion),
                                   static_cast<long long>(task->chat), counts.c_str());
  if (task->skipped > 0) {
    text += printf_string("skipped %lld bad records; the first:\n", static_cast<long long>(task->skipped));
    for (const auto& r : skipped_reasons) text += "  " + r + "\n";
  }
  return text;
}

TokenFileInfo token_file_info(const std::string& path, double val_fraction, uint64_t seed) {
  auto file = std::make_shared<TokenFile>(path);
  TokenDataset ds(file, val_fraction, seed);
  TokenFileInfo i;
  i.file = path;
  i.tokens = file->num_tokens();
  i.docs = file->num_docs();
  i.vocab_size = file->vocab_size();
  i.token_bytes = file->token_bytes();
  i.meta = file->meta();
  i.val_fraction = val_fraction;
  i.seed = seed;
  i.train = {ds.train().docs, ds.train().tokens, ds.train().bytes};
  i.val = {ds.val().docs, ds.val().tokens, ds.val().bytes};
  i.unigram_bits_per_token = ds.unigram_bits_per_token();
  i.unigram_bits_per_byte = ds.unigram_bits_per_byte();
  if (file->has_completion_mask()) i.task_lengths = task_length_stats(*file);
  return i;
}

json TokenFileInfo::to_json() const {
  const auto part = [](const Part& p) { return json{{"docs", p.docs}, {"tokens", p.tokens}, {"bytes", p.bytes}}; };
  json j = {{"file", file},
            {"tokens", tokens},
            {"docs", docs},
            {"vocab_size", vocab_size},
            {"token_bytes", token_bytes},
            {"meta", meta},
            {"split", {{"val_fraction", val_fraction}, {"seed", seed}}},
            {"train", part(train)},
            {"val", part(val)},
            {"unigram_bits_per_token", unigram_bits_per_token},
            {"unigram_bits_per_byte", unigram_bits_per_byte}};
  if (task_lengths) j["task_lengths"] = task_lengths->to_json();
  return j;
}

std::string TokenFileInfo::text() const {
  std::string text = printf_string("%s: %s tokens in %s documents, vocabulary %lld (%lld-byte tokens)\n", file.c_str(),
                                   with_commas(tokens).c_str(), with_commas(docs).c_str(), static_cast<long long>(vocab_size),
                                   static_cast<long long>(token_bytes));
  text += printf_string("split (seed %llu, val fraction %.3g): train %lld docs / %s tokens, val %lld docs / %s tokens\n",
                        static_cast<unsigned long long>(seed), val_fraction, static_cast<long long>(train.docs),
                        with_commas(train.tokens).c_str(), static_cast<long long>(val.docs), with_commas(val.tokens).c_str());
  text += printf_string("unigram entropy of the training split%s: %.4f bits/token, %.4f bits/byte\n",
                        task_lengths ? " (completion tokens)" : "", unigram_bits_per_token, unigram_bits_per_byte);
  if (task_lengths) {
    text += printf_string("task records: %lld (completion = the answer and its end marker %s)\n",
                          static_cast<long long>(task_lengths->records), std::string(kTaskEnd).c_str());
    text += length_line("prompt", task_lengths->prompt);
    text += length_line("completion", task_lengths->completion);
  }
  return text;
}

}  // namespace flashnas
