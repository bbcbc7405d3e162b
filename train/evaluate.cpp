#include "train/evaluate.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>

#include "common/error.h"
#include "common/files.h"
#include "train/corpus.h"
#include "train/safetensors.h"
#include "train/dataset.h"
#include "train/task_data.h"
#include "train/token_file.h"

namespace flashnas {
namespace fs = std::filesystem;
namespace {

// The documents to evaluate: a token file's read one at a time (a large file
// is never held in memory), or text tokenized in memory.
struct Docs {
  std::unique_ptr<TokenFile> file;
  std::vector<std::vector<int64_t>> text_tokens;
  std::vector<int64_t> text_bytes;
  int64_t count() const { return file ? file->num_docs() : int64_t(text_tokens.size()); }
  int64_t length(int64_t d) const { return file ? file->doc_end(d) - file->doc_begin(d) : int64_t(text_tokens[size_t(d)].size()); }
  int64_t bytes(int64_t d) const { return file ? file->doc_bytes(d) : text_bytes[size_t(d)]; }
  std::vector<int64_t> tokens(int64_t d) const {
    if (!file) return text_tokens[size_t(d)];
    std::vector<int64_t> ids(size_t(length(d)));
    file->read(file->doc_begin(d), int64_t(ids.size()), ids.data());
    return ids;
  }
};

// A token file must have been made with the model's tokenizer: the same kind,
// vocabulary and (where both record it) SentencePiece model.
void check_same_tokenizer(const LoadedModel& m, const TokenFile& f, const fs::path& data) {
  const json& t = f.meta().contains("tokenizer") ? f.meta().at("tokenizer") : json::object();
  const json mine = m.tokenizer->describe();
  const std::string type = t.value("type", std::string("?"));
  const int64_t vocab = f.vocab_size();
  const bool same_sha = !t.contains("sha256") || !mine.contains("sha256") || t.at("sha256") == mine.at("sha256");
  if (type != m.tokenizer->type() || vocab != m.tokenizer->vocab_size() || !same_sha) {
    throw InputError(data.string() + ": tokenized with a " + type + " tokenizer (vocabulary " + std::to_string(vocab) +
                     (same_sha ? "" : ", another SentencePiece model") + "); the model reads " + m.tokenizer->type() +
                     " tokens (vocabulary " + std::to_string(m.tokenizer->vocab_size()) +
                     "): give the text itself, which eval tokenizes with the model's tokenizer");
  }
}

Docs read_docs(const LoadedModel& m, const fs::path& data) {
  Docs d;
  std::error_code ec;
  if (!fs::exists(data, ec)) throw InputError("--data " + data.string() + ": no such file or folder");
  if (fs::is_regular_file(data, ec) && is_token_file(data)) {
    d.file = std::make_unique<TokenFile>(data);
    check_same_tokenizer(m, *d.file, data);
    d.file->check_ids();  // ids below the tokenizer's vocabulary, which the model was trained with
  } else {
    for (const auto& doc : read_corpus(data)) {
      const auto ids = m.tokenizer->encode(doc.text);
      d.text_tokens.emplace_back(ids.begin(), ids.end());
      d.text_bytes.push_back(int64_t(doc.text.size()));
    }
  }
  if (m.tokenizer->vocab_size() > m.arch.vocab_size) {
    throw InputError(data.string() + ": the model's tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                     " tokens, more than its vocabulary of " + std::to_string(m.arch.vocab_size));
  }
  return d;
}

int64_t window_length(const LoadedModel& m, const EvalOptions& o) {
  int64_t t = o.seq_len;
  if (t == 0) t = m.config.contains("recipe") ? m.config["recipe"].value("seq_len", int64_t(256)) : 256;
  if (t < 1 || t > (int64_t(1) << 20)) {
    throw InputError("--seq-len: must be 1.." + std::to_string(int64_t(1) << 20) + " tokens, got " + std::to_string(t));
  }
  return t;
}

}  // namespace

json EvalResult::to_json() const {
  return json{{"docs", docs},       {"windows", windows},       {"tokens", tokens},
              {"seq_len", seq_len}, {"loss", loss},             {"perplexity", perplexity},
              {"bits_per_byte", bits_per_byte}, {"seconds", seconds}};
}

EvalResult evaluate_model(const LoadedModel& m, const fs::path& data, const EvalOptions& o,
                          const std::function<void(int64_t, int64_t)>& progress) {
  if (o.max_tokens < 0) throw InputError("--max-tokens: must be >= 0 (0: all), got " + std::to_string(o.max_tokens));
  if (o.batch < 1) throw InputError("--batch: must be >= 1, got " + std::to_string(o.batch));
  const auto t0 = std::chrono::steady_clock::now();
  EvalResult r;
  r.seq_len = window_length(m, o);
  const int64_t T = r.seq_len, V = m.arch.vocab_size;
  const Docs docs = read_docs(m, data);
  int64_t total = 0;
  for (int64_t d = 0; d < docs.count(); ++d) total += std::max<int64_t>(0, docs.length(d) - 1);
  if (total == 0) throw InputError(data.string() + ": no document has two tokens or more; there is nothing to predict");
  if (o.max_tokens > 0) total = std::min(total, o.max_tokens);

  torch::NoGradGuard no_grad;
  HybridLM model = m.model;  // the holder shares the module
  model->eval();
  double nats = 0;
  int64_t used_tokens = 0, used_bytes = 0;
  // Windows of the same length, run together.
  std::vector<int64_t> pending;
  int64_t pending_len = 0, pending_n = 0;
  auto flush = [&] {
    if (pending_n == 0) return;
    const auto w = torch::from_blob(pending.data(), {pending_n, pending_len + 1}, torch::kInt64).clone();
    const auto logits = model->forward(w.narrow(1, 0, pending_len));
    const auto ce = torch::nn::functional::cross_entropy(
        logits.reshape({-1, V}).to(torch::kFloat32), w.narrow(1, 1, pending_len).reshape(-1),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    nats += ce.to(torch::kFloat64).sum().item<double>();
    r.tokens += pending_n * pending_len;
    r.windows += pending_n;
    pending.clear();
    pending_n = 0;
    if (progress) progress(r.tokens, total);
  };
  for (int64_t d = 0; d < docs.count() && r.tokens + pending_n * pending_len < total; ++d) {
    if (docs.length(d) < 2) continue;
    const std::vector<int64_t> ids = docs.tokens(d);
    ++r.docs;
    used_tokens += int64_t(ids.size());
    used_bytes += docs.bytes(d);
    for (int64_t start = 0; start + 1 < int64_t(ids.size()); start += T) {
      int64_t len = std::min<int64_t>(T, int64_t(ids.size()) - 1 - start);
      const int64_t left = total - r.tokens - pending_n * pending_len;
      if (left <= 0) break;
      len = std::min(len, left);
      if (len != pending_len || pending_n == o.batch) flush();
      pending_len = len;
      pending.insert(pending.end(), ids.begin() + start, ids.begin() + start + len + 1);
      ++pending_n;
    }
  }
  flush();
  r.loss = nats / double(r.tokens);
  r.perplexity = std::exp(r.loss);
  r.bits_per_byte = used_bytes > 0 ? r.loss / std::log(2.0) * double(used_tokens) / double(used_bytes) : NAN;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

bool is_task_data(const fs::path& data) {
  std::error_code ec;
  if (!fs::is_regular_file(data, ec)) return false;
  if (is_jsonl_path(data)) return true;
  return is_token_file(data) && TokenFile(data).has_completion_mask();
}

TaskEvalResult evaluate_model_task(const LoadedModel& m, const fs::path& data, const std::string& split,
                                   const TaskEvalOptions& o, std::string* which,
                                   const std::function<void(const char*, int64_t, int64_t)>& progress) {
  if (split != "auto" && split != "val" && split != "all") {
    throw InputError("--split: must be auto, val or all, got \"" + split + "\"");
  }
  std::error_code ec;
  if (!fs::exists(data, ec)) throw InputError("--data " + data.string() + ": no such file");
  std::vector<TaskRecord> records;
  if (!is_token_file(data)) {
    if (split == "val") throw InputError("--split val: only for a token file (the split is by the model's recipe); " + data.string() + " is JSONL");
    records = task_records_from_jsonl(data, *m.tokenizer);
    if (which) *which = "all " + std::to_string(records.size()) + " records of " + data.string();
  } else {
    TokenFile f(data);
    check_same_tokenizer(m, f, data);
    f.check_ids();
    const json recipe = m.config.value("recipe", json::object());
    const json trained = m.config.value("data", json::object());
    const bool same = trained.value("path", std::string()) == fs::absolute(data).string() &&
                      trained.value("tokens", int64_t(-1)) == f.num_tokens();
    std::vector<int64_t> docs;
    if (split == "val" || (split == "auto" && same)) {
      if (!recipe.contains("seed") || !recipe.contains("val_fraction")) {
        throw InputError("--split val: the model's config.json records no training recipe (seed, val_fraction); use --split all");
      }
      auto shared = std::make_shared<TokenFile>(data);
      TokenDataset ds(shared, recipe.at("val_fraction").get<double>(), recipe.at("seed").get<uint64_t>());
      docs = ds.val_docs();
      if (which) *which = "the " + std::to_string(docs.size()) + " held-out records (validation split, seed " +
                          std::to_string(recipe.at("seed").get<uint64_t>()) + ") of " + data.string();
    } else {
      for (int64_t d = 0; d < f.num_docs(); ++d) docs.push_back(d);
      if (which) *which = "all " + std::to_string(docs.size()) + " records of " + data.string();
    }
    records = task_records(f, docs);
  }
  if (m.tokenizer->vocab_size() > m.arch.vocab_size) {
    throw InputError(data.string() + ": the model's tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                     " tokens, more than its vocabulary of " + std::to_string(m.arch.vocab_size));
  }
  return evaluate_task(m.model, *m.tokenizer, records, o, progress);
}

PromptLogits prompt_logits(const LoadedModel& m, const std::string& prompt) {
  PromptLogits p;
  p.tokens = m.tokenizer->encode(prompt);
  if (p.tokens.empty()) throw InputError("--logits: the prompt is empty");
  for (const int32_t id : p.tokens) {
    if (id >= m.arch.vocab_size) {
      throw InputError("--logits: the prompt's token " + std::to_string(id) + " is outside the model's vocabulary of " +
                       std::to_string(m.arch.vocab_size));
    }
  }
  torch::NoGradGuard no_grad;
  HybridLM model = m.model;
  model->eval();
  std::vector<int64_t> ids(p.tokens.begin(), p.tokens.end());
  const auto x = torch::from_blob(ids.data(), {1, int64_t(ids.size())}, torch::kInt64).clone();
  p.logits = model->forward(x).squeeze(0).to(torch::kFloat32).contiguous();
  return p;
}

void check_logits_output(const fs::path& out) {
  const std::string ext = out.extension().string();
  if (ext != ".safetensors" && ext != ".npy") throw InputError("--out " + out.string() + ": must end in .safetensors or .npy");
  check_output_file(out, "--out");
}

void write_logits(const fs::path& out, const PromptLogits& p) {
  const std::string ext = out.extension().string();
  if (ext == ".safetensors") {
    std::string tokens;
    for (const int32_t t : p.tokens) tokens += (tokens.empty() ? "" : ",") + std::to_string(t);
    save_safetensors(out, {{"logits", p.logits}}, {{"tokens", tokens}});
    return;
  }
  if (ext != ".npy") throw InputError("--out " + out.string() + ": must end in .safetensors or .npy");
  // NumPy format 1.0: magic, version, header length (u16 LE), a Python dict
  // literal padded with spaces and ended by a newline so the data starts at
  // a multiple of 64 bytes, then the raw little-endian float32 values.
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(p.logits.size(0)) +
                       ", " + std::to_string(p.logits.size(1)) + "), }";
  const size_t prefix = 10;
  header.append((64 - (prefix + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += char(header.size() & 0xff);
  bytes += char((header.size() >> 8) & 0xff);
  bytes += header;
  const size_t n = size_t(p.logits.numel()) * sizeof(float);
  const size_t at = bytes.size();
  bytes.resize(at + n);
  std::memcpy(bytes.data() + at, p.logits.data_ptr<float>(), n);
  write_file_atomic(out, bytes);
}

}  // namespace flashnas
