// The training data of a run, opened one way everywhere (search workers,
// proxy, export, `flashnas train`, benchmarks): a token file (flashnas data
// prepare), the tokenizer it records, and its train/validation split.
#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "train/data_report.h"
#include "train/dataset.h"
#include "train/token_file.h"
#include "train/tokenizer.h"

namespace flashnas {

struct TrainingData {
  std::shared_ptr<const TokenFile> file;
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const TokenDataset> dataset;
};

// Opens the token file `tokens` split by (val_fraction, seed). `where` names
// the field or flag in errors: InputError "<where>: <path> is not a token
// file; make one with flashnas data prepare" and the like.
TrainingData open_training_data(const std::filesystem::path& tokens, double val_fraction, uint64_t seed,
                                const std::string& where);

// `data` is a token file, task records (.jsonl) or UTF-8 text (a file or folder) that is tokenized
// into `out_dir`/data.tokens with the SentencePiece model `tokenizer_model`
// (byte-level when empty); an existing data.tokens is reused when `reuse`.
// InputError for --tokenizer given with a token file.
TrainingData training_data_from(const std::filesystem::path& data, const std::string& tokenizer_model,
                                const std::filesystem::path& out_dir, bool reuse, double val_fraction, uint64_t seed);

// `flashnas data prepare`: tokenizes UTF-8 text (a file or folder), or the
// task records of a .jsonl file (train/task_data.h; `skip_bad` skips bad
// records instead of refusing the file), with the SentencePiece model
// `tokenizer_model` (byte-level when empty) into the token file `out`.
// Returns what it wrote (train/data_report.h).
PrepareSummary prepare_token_file(const std::filesystem::path& input, const std::filesystem::path& out,
                        const std::string& tokenizer_model, int64_t max_doc_bytes, bool skip_bad = false);

}  // namespace flashnas
