#include "train/training_data.h"

#include "common/error.h"
#include "common/files.h"
#include "train/corpus.h"
#include "train/task_data.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {
// Text documents, or task records from a .jsonl file (meta gets "task";
// `counts` and `skipped_reasons`, when given, what was read and skipped).
std::vector<Document> read_documents(const fs::path& input, int64_t max_doc_bytes, bool skip_bad, json& meta,
                                     std::optional<TaskCounts>* counts, std::vector<std::string>* skipped_reasons) {
  std::error_code ec;
  if (fs::is_regular_file(input, ec) && is_jsonl_path(input)) {
    TaskRead t = read_task_jsonl(input, skip_bad);
    meta["task"] = t.counts().to_json();
    if (counts) *counts = t.counts();
    if (skipped_reasons) *skipped_reasons = std::move(t.skipped_reasons);
    return std::move(t.records);
  }
  if (skip_bad) throw InputError("--skip-bad: only for task data (a .jsonl file); " + input.string() + " is read as text");
  return read_corpus(input, max_doc_bytes);
}
}  // namespace

TrainingData open_training_data(const fs::path& tokens, double val_fraction, uint64_t seed, const std::string& where) {
  if (!is_token_file(tokens)) {
    throw InputError(where + ": " + tokens.string() + " is not a token file; make one with flashnas data prepare");
  }
  TrainingData d;
  auto file = std::make_shared<TokenFile>(tokens);
  d.tokenizer = std::shared_ptr<const Tokenizer>(
      tokenizer_from_json(file->meta().at("tokenizer"), tokens.parent_path(), tokens.string()));
  d.dataset = std::make_shared<TokenDataset>(file, val_fraction, seed);
  d.file = std::move(file);
  return d;
}

TrainingData training_data_from(const fs::path& data, const std::string& tokenizer_model, const fs::path& out_dir,
                                bool reuse, double val_fraction, uint64_t seed) {
  if (is_token_file(data)) {
    if (!tokenizer_model.empty()) {
      throw InputError("--tokenizer: only for text --data; " + data.string() + " is already tokenized");
    }
    return open_training_data(data, val_fraction, seed, "--data");
  }
  // Text: checked and tokenized into the run folder first.
  std::shared_ptr<Tokenizer> tok = tokenizer_model.empty() ? std::shared_ptr<Tokenizer>(make_byte_tokenizer())
                                                           : std::shared_ptr<Tokenizer>(load_sentencepiece(tokenizer_model));
  json meta = {{"source", data.string()}};
  const auto docs = read_documents(data, 1 << 20, false, meta, nullptr, nullptr);
  fs::create_directories(out_dir);
  const fs::path tokens = out_dir / "data.tokens";
  if (!(reuse && fs::exists(tokens))) write_token_file(tokens, docs, *tok, meta);
  TrainingData d;
  auto file = std::make_shared<TokenFile>(tokens);
  d.dataset = std::make_shared<TokenDataset>(file, val_fraction, seed);
  d.file = std::move(file);
  d.tokenizer = std::move(tok);
  return d;
}

PrepareSummary prepare_token_file(const fs::path& input, const fs::path& out, const std::string& tokenizer_model,
                        int64_t max_doc_bytes, bool skip_bad) {
  // flashnas overwrites only its own token files: never the source text, a
  // tokenizer model or anything else already there.
  std::error_code ec;
  if (fs::exists(out, ec) && (fs::is_directory(out, ec) || !is_token_file(out))) {
    const bool same = fs::equivalent(input, out, ec);
    throw InputError("--out " + out.string() + ": " +
                     (same ? std::string("is the input itself")
                           : std::string(fs::is_directory(out, ec) ? "is a folder" : "exists and is not a flashnas token file")) +
                     "; flashnas writes a token file only to a new path or over an older token file");
  }
  std::unique_ptr<Tokenizer> tok = tokenizer_model.empty() ? make_byte_tokenizer() : load_sentencepiece(tokenizer_model);
  json meta = {{"source", input.string()}};
  PrepareSummary sum;
  const auto docs = read_documents(input, max_doc_bytes, skip_bad, meta, &sum.task, &sum.skipped_reasons);
  int64_t bytes = 0;
  for (const auto& d : docs) bytes += static_cast<int64_t>(d.text.size());
  // A SentencePiece model travels with the token file, beside it as
  // <out>.tokenizer.model (never over a different file of that name).
  std::string model_name = "tokenizer.model";
  if (!tokenizer_model.empty()) {
    model_name = out.filename().string() + ".tokenizer.model";
    const fs::path model_path = out.parent_path() / model_name;
    if (fs::exists(model_path, ec) && !fs::equivalent(model_path, tokenizer_model, ec) &&
        read_file(model_path) != read_file(tokenizer_model)) {
      throw InputError("--out " + out.string() + ": " + model_path.string() +
                       " exists and is another file; the token file's tokenizer model would be written there");
    }
  }
  const int64_t n = write_token_file(out, docs, *tok, meta, model_name);
  if (!tokenizer_model.empty() && !fs::exists(out.parent_path() / model_name, ec)) {
    tok->save_files(out.parent_path().empty() ? fs::path(".") : out.parent_path(), model_name);
  }
  sum.out = out.string();
  sum.docs = int64_t(docs.size());
  sum.bytes = bytes;
  sum.tokens = n;
  sum.tokenizer = tok->describe(model_name);
  sum.type = tok->type();
  sum.vocab_size = tok->vocab_size();
  return sum;
}

}  // namespace flashnas
