// Evaluating a model folder on data (`flashnas eval`): loss, perplexity and
// bits per byte, and the next-token logits of a prompt.
//
// Data is a token file made with the model's tokenizer, or UTF-8 text (a file
// or folder) tokenized in memory with it. Each document is cut into windows
// of `seq_len` + 1 tokens that overlap by one token: window k is the model's
// input tokens [k*T, k*T + T) from a fresh state (no context across windows)
// and predicts tokens [k*T + 1, k*T + T]; a document's last window is shorter.
// Every token but each document's first is predicted exactly once.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/json_io.h"
#include "train/checkpoint.h"
#include "train/task_eval.h"

namespace flashnas {

struct EvalOptions {
  int64_t seq_len = 0;     // tokens per window (0: the model's training seq_len, else 256)
  int64_t max_tokens = 0;  // stop after predicting about this many tokens (0: all)
  int64_t batch = 8;       // windows of the same length per forward pass
};

struct EvalResult {
  int64_t docs = 0, windows = 0, tokens = 0;  // predicted tokens
  int64_t seq_len = 0;
  double loss = 0;           // mean cross-entropy per predicted token, nats
  double perplexity = 0;     // exp(loss)
  double bits_per_byte = 0;  // loss / ln 2 x (the data's tokens / its UTF-8 bytes)
  double seconds = 0;
  json to_json() const;
};

// InputError naming the file for data the model cannot read (another
// tokenizer or vocabulary, ids past the model's vocabulary, too little text).
// `progress(done, total)` counts predicted tokens.
EvalResult evaluate_model(const LoadedModel& m, const std::filesystem::path& data, const EvalOptions& o,
                          const std::function<void(int64_t, int64_t)>& progress = {});

// Task data (`flashnas eval --data` a task token file or a .jsonl file):
// the task metrics of train/task_eval.h. Records: with split "val", the
// validation split of a token file by the model's recipe (seed,
// val_fraction); "all", every record; "auto", "val" when the token file is
// the one the model was trained on (the same path and token count in its
// config.json), else "all". `which` receives a description of the records.
bool is_task_data(const std::filesystem::path& data);
TaskEvalResult evaluate_model_task(const LoadedModel& m, const std::filesystem::path& data, const std::string& split,
                                   const TaskEvalOptions& o, std::string* which,
                                   const std::function<void(const char*, int64_t, int64_t)>& progress = {});

// The prompt's tokens and, for every position, the next-token logits
// (float32 [T, vocab_size]) from one forward pass.
struct PromptLogits {
  std::vector<int32_t> tokens;
  torch::Tensor logits;
};
PromptLogits prompt_logits(const LoadedModel& m, const std::string& prompt);

// Writes `logits` as FILE.safetensors (tensor "logits", with the tokens in
// the metadata) or FILE.npy (NumPy format 1.0, little-endian float32), by the
// extension; InputError naming --out for any other.
void write_logits(const std::filesystem::path& out, const PromptLogits& p);
// The same checks on `out` before any work: the extension, and that it can be written.
void check_logits_output(const std::filesystem::path& out);

}  // namespace flashnas
