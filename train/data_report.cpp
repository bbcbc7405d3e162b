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

long long ll(const json& v) { return static_cast<long long>(v.get<int64_t>()); }

std::string length_line(const char* what, const json& l) {
  return printf_string("%-10s tokens: p50 %lld, p90 %lld, p99 %lld, max %lld, mean %.1f\n", what, ll(l["p50"]), ll(l["p90"]),
                       ll(l["p99"]), ll(l["max"]), l["mean"].get<double>());
}

}  // namespace

std::string prepare_summary_text(const json& summary, const std::string& out) {
  const std::string tokens = with_commas(summary["bytes"].get<int64_t>()) + " bytes -> " +
                             with_commas(summary["tokens"].get<int64_t>()) + " tokens (" +
                             summary["type"].get<std::string>() + ", vocabulary " +
                             std::to_string(summary["vocab_size"].get<int64_t>()) + ")";
  if (summary["task"].is_null()) {
    return printf_string("%s: %lld documents, %s\n", out.c_str(), ll(summary["docs"]), tokens.c_str());
  }
  const json& t = summary["task"];
  std::string text = printf_string("%s: %lld task records (%lld prompt/completion, %lld chat), %s\n", out.c_str(),
                                   ll(t["records"]), ll(t["prompt_completion"]), ll(t["chat"]), tokens.c_str());
  if (t["skipped"].get<int64_t>() > 0) {
    text += printf_string("skipped %lld bad records; the first:\n", ll(t["skipped"]));
    for (const auto& r : summary["skipped_reasons"]) text += "  " + r.get<std::string>() + "\n";
  }
  return text;
}

json token_file_info(const std::string& path, double val_fraction, uint64_t seed) {
  auto file = std::make_shared<TokenFile>(path);
  TokenDataset ds(file, val_fraction, seed);
  json j = {{"file", path},
            {"tokens", file->num_tokens()},
            {"docs", file->num_docs()},
            {"vocab_size", file->vocab_size()},
            {"token_bytes", file->token_bytes()},
            {"meta", file->meta()},
            {"split", {{"val_fraction", val_fraction}, {"seed", seed}}},
            {"train", {{"docs", ds.train().docs}, {"tokens", ds.train().tokens}, {"bytes", ds.train().bytes}}},
            {"val", {{"docs", ds.val().docs}, {"tokens", ds.val().tokens}, {"bytes", ds.val().bytes}}},
            {"unigram_bits_per_token", ds.unigram_bits_per_token()},
            {"unigram_bits_per_byte", ds.unigram_bits_per_byte()}};
  if (file->has_completion_mask()) j["task_lengths"] = task_length_stats(*file).to_json();
  return j;
}

std::string token_file_info_text(const json& j) {
  const bool task = j.contains("task_lengths");
  std::string text = printf_string("%s: %s tokens in %s documents, vocabulary %lld (%lld-byte tokens)\n",
                                   j["file"].get<std::string>().c_str(), with_commas(j["tokens"].get<int64_t>()).c_str(),
                                   with_commas(j["docs"].get<int64_t>()).c_str(), ll(j["vocab_size"]), ll(j["token_bytes"]));
  text += printf_string("split (seed %llu, val fraction %.3g): train %lld docs / %s tokens, val %lld docs / %s tokens\n",
                        static_cast<unsigned long long>(j["split"]["seed"].get<uint64_t>()),
                        j["split"]["val_fraction"].get<double>(), ll(j["train"]["docs"]),
                        with_commas(j["train"]["tokens"].get<int64_t>()).c_str(), ll(j["val"]["docs"]),
                        with_commas(j["val"]["tokens"].get<int64_t>()).c_str());
  text += printf_string("unigram entropy of the training split%s: %.4f bits/token, %.4f bits/byte\n",
                        task ? " (completion tokens)" : "", j["unigram_bits_per_token"].get<double>(),
                        j["unigram_bits_per_byte"].get<double>());
  if (task) {
    const json& t = j["task_lengths"];
    text += printf_string("task records: %lld (completion = the answer and its end marker %s)\n", ll(t["records"]),
                          std::string(kTaskEnd).c_str());
    text += length_line("prompt", t["prompt_tokens"]);
    text += length_line("completion", t["completion_tokens"]);
  }
  return text;
}

}  // namespace flashnas
