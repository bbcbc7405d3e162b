#include "train/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cmath>
#include <random>
#include <unordered_map>
#include <unistd.h>

#include "common/error.h"
#include "common/files.h"
#include "common/json_io.h"
#include "common/sha256.h"
#include "train/corpus.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {

class ByteTokenizer : public Tokenizer {
 public:
  std::string type() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    s.reserve(ids.size());
    for (int32_t id : ids) s.push_back(static_cast<char>(id & 0xff));
    return s;
  }
  json describe(const std::string&) const override { return json{{"type", "byte"}, {"vocab_size", 256}}; }
  void save_files(const fs::path&, const std::string&) const override {}
};

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const fs::path& model) : bytes_(read_file(model)) {
    // The library throws (rather than returning a status) on some damaged
    // models, e.g. an empty piece reaching its double-array builder.
    sentencepiece::util::Status status;
    try {
      status = sp_.LoadFromSerializedProto(bytes_);
    } catch (const std::exception& e) {
      throw InputError(model.string() + ": not a SentencePiece model (the library refused it: " + e.what() + ")");
    }
    if (!status.ok()) throw InputError(model.string() + ": not a SentencePiece model: " + status.ToString());
    // Protocol buffers parse damaged bytes inside a piece or a score as
    // values: every piece must be UTF-8 text with a finite score.
    for (int id = 0; id < sp_.GetPieceSize(); ++id) {
      const std::string& piece = sp_.IdToPiece(id);
      const float score = sp_.GetScore(id);
      if (piece.empty() || first_invalid_utf8(piece) >= 0 || !std::isfinite(score)) {
        throw InputError(model.string() + ": piece " + std::to_string(id) + " is " +
                         (piece.empty() ? "empty" : std::isfinite(score) ? "not UTF-8 text" : "scored " + std::to_string(score)) +
                         "; the SentencePiece model is damaged");
      }
    }
  }
  std::string type() const override { return "sentencepiece"; }
  int64_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int> ids;
    const auto status = sp_.Encode(text, &ids);
    if (!status.ok()) throw Error("SentencePiece encode failed: " + status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    const auto status = sp_.Decode(std::vector<int>(ids.begin(), ids.end()), &out);
    if (!status.ok()) throw Error("SentencePiece decode failed: " + status.ToString());
    return out;
  }
  // With the model's SHA-256: a file carried beside a token file or in a
  // model folder is checked when loaded (garbage inside its normalizer table
  // would otherwise parse as a different, valid model).
  json describe(const std::string& model_name) const override {
    return json{{"type", "sentencepiece"}, {"model", model_name}, {"vocab_size", vocab_size()}, {"sha256", sha256_hex(bytes_)}};
  }
  void save_files(const fs::path& dir, const std::string& model_name) const override {
    write_file_atomic(dir / model_name, bytes_);
  }

 private:
  std::string bytes_;
  sentencepiece::SentencePieceProcessor sp_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

std::unique_ptr<Tokenizer> load_sentencepiece(const fs::path& model_file) {
  return std::make_unique<SentencePieceTokenizer>(model_file);
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const json& desc, const fs::path& dir, const std::string& source) {
  FieldReader f(desc, source, "tokenizer");
  const std::string type = f.string("type");
  if (type == "byte") {
    f.positive("vocab_size", 256);
    f.finish();
    return make_byte_tokenizer();
  }
  if (type == "sentencepiece") {
    const fs::path model = f.string("model");
    const int64_t vocab = f.positive("vocab_size");
    const std::string sha = f.string("sha256", "");  // absent in files written before it was recorded
    f.finish();
    const fs::path file = model.is_absolute() ? model : dir / model;
    std::error_code ec;
    if (fs::exists(file, ec) && !fs::is_regular_file(file, ec)) {
      throw InputError(file.string() + ": not a regular file, so not a SentencePiece model (named in " + source + ")");
    }
    if (!sha.empty()) {
      if (!fs::exists(file, ec)) throw InputError(file.string() + ": no such SentencePiece model (named in " + source + ")");
      const std::string got = sha256_hex(read_file(file));
      if (got != sha) {
        throw InputError(file.string() + ": SHA-256 " + got.substr(0, 12) + "..., but " + source +
                         " was made with a model whose SHA-256 is " + sha.substr(0, 12) +
                         "...: the model file is damaged or was replaced");
      }
    }
    auto tok = load_sentencepiece(file);
    if (tok->vocab_size() != vocab) {
      f.fail("vocab_size", "is " + std::to_string(vocab) + " but the model file has " +
                               std::to_string(tok->vocab_size()) + " pieces");
    }
    return tok;
  }
  f.fail("type", "unknown tokenizer \"" + type + "\"; allowed: byte, sentencepiece");
}

// SentencePiece trains on lines and skips longer ones (by default any over
// 4192 bytes, so a text with long paragraphs trained on nothing).
constexpr int64_t kMaxTrainingLineBytes = int64_t(1) << 20;

void train_sentencepiece(const std::vector<fs::path>& inputs, int64_t vocab_size, const fs::path& out_model) {
  if (inputs.empty()) throw InputError("tokenizer training: no input files");
  if (vocab_size < 16) throw InputError("--vocab-size: must be at least 16, got " + std::to_string(vocab_size));
  const fs::path dir = out_model.has_parent_path() ? out_model.parent_path() : fs::path(".");
  std::random_device rd;
  const fs::path prefix = dir / (".spm-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::string input_list;
  for (const auto& p : inputs) input_list += (input_list.empty() ? "" : ",") + p.string();
  // Identity normalization and every whitespace kept: code and JSON keep
  // their newlines (as byte pieces: training reads lines) and indentation.
  const std::unordered_map<std::string, std::string> args = {
      {"input", input_list},
      {"model_prefix", prefix.string()},
      {"vocab_size", std::to_string(vocab_size)},
      {"model_type", "unigram"},
      {"character_coverage", "1.0"},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"max_sentence_length", std::to_string(kMaxTrainingLineBytes)},
      {"minloglevel", "2"},
      {"num_threads", "2"}};
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  std::error_code ec;
  fs::remove(prefix.string() + ".vocab", ec);
  if (!status.ok()) {
    fs::remove(prefix.string() + ".model", ec);
    const std::string why = status.ToString();
    const std::string hint = why.find("sentences_.empty()") != std::string::npos
                                 ? " (no usable line: the input is empty, or every line is longer than " +
                                       std::to_string(kMaxTrainingLineBytes) + " bytes)"
                                 : "";
    throw InputError("tokenizer training on " + inputs.front().string() + (inputs.size() > 1 ? " (and others)" : "") +
                     " failed: " + why + hint);
  }
  fs::rename(prefix.string() + ".model", out_model, ec);
  if (ec) {
    fs::remove(prefix.string() + ".model", ec);
    throw Error(out_model.string() + ": cannot move the trained model into place");
  }
}

}  // namespace flashnas
