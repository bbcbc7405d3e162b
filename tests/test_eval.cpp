// flashnas eval: the loss it prints is the mean next-token cross-entropy of
// the model over the data's windows, checked against a plain reimplementation
// here (each window its own forward pass, log-softmax in float64); text and
// the token file made from it give the same figures; the logits it writes
// (safetensors and .npy) are the model's; bad requests exit 2 writing nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/files.h"
#include "common/json_io.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"
#include "train/token_file.h"
#include "test_util.h"

namespace flashnas::test {
namespace {

namespace fs = std::filesystem;

// A short-trained model folder (demo-tiny: meta tokens, attention, Mamba2,
// delta rule and FFN) and the corpus it trained on.
struct Trained {
  TempDir dir;
  fs::path tokens, model;
  Trained() {
    tokens = tiny_token_file(dir);
    model = dir / "run";
    const auto r = run_cli({"train", "--arch", std::string(test::source_dir()) + "/configs/arch/demo-tiny.json", "--data",
                            tokens.string(), "--tokens", "512", "--batch-size", "2", "--seq-len", "16", "--threads", "1",
                            "--quiet", "--out", model.string()});
    if (r.exit_code != 0) throw std::runtime_error("train failed: " + r.err);
  }
};

const Trained& trained() {
  static const Trained t;
  return t;
}

// The reference: every document cut into windows of T + 1 tokens overlapping
// by one, each window a fresh forward pass, until `max_tokens` are predicted.
struct Reference {
  double loss = 0;
  int64_t tokens = 0, windows = 0;
};
Reference reference(const fs::path& model_dir, const fs::path& token_file, int64_t T, int64_t max_tokens) {
  LoadedModel m = load_model_dir(model_dir);
  TokenFile f(token_file);
  torch::NoGradGuard no_grad;
  double nats = 0;
  Reference r;
  for (int64_t d = 0; d < f.num_docs() && r.tokens < max_tokens; ++d) {
    std::vector<int64_t> ids(size_t(f.doc_end(d) - f.doc_begin(d)));
    f.read(f.doc_begin(d), int64_t(ids.size()), ids.data());
    for (int64_t s = 0; s + 1 < int64_t(ids.size()) && r.tokens < max_tokens; s += T) {
      const int64_t len = std::min({T, int64_t(ids.size()) - 1 - s, max_tokens - r.tokens});
      const auto x = torch::tensor(std::vector<int64_t>(ids.begin() + s, ids.begin() + s + len)).unsqueeze(0);
      const auto logp = torch::log_softmax(m.model->forward(x).squeeze(0).to(torch::kFloat64), -1);
      for (int64_t i = 0; i < len; ++i) nats -= logp[i][ids[size_t(s + i + 1)]].item<double>();
      r.tokens += len;
      ++r.windows;
    }
  }
  r.loss = nats / double(r.tokens);
  return r;
}

json eval_json(const std::vector<std::string>& extra) {
  std::vector<std::string> a = {"eval", "--model", trained().model.string(), "--json", "--threads", "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  const auto r = run_cli(a);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return parse_json(r.out, "eval output");
}

TEST(ModelFolder, AConfigForAFarLargerModelThanItsWeightsIsRefusedBeforeBuildingIt) {
  test::TempDir dir;
  const fs::path copy = dir / "model";
  fs::copy(trained().model, copy, fs::copy_options::recursive);
  json cfg = load_json_file(copy / "config.json");
  cfg["arch"]["d_model"] = 65536;  // about 8.6G parameters against the file's few thousand
  write_file_atomic(copy / "config.json", cfg.dump());
  try {
    (void)load_model_dir(copy);
    FAIL() << "loaded a folder whose config names another model";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((copy / "model.safetensors").string() + ": holds "), std::string::npos) << msg;
    EXPECT_NE(msg.find("the weights and config.json come from different models"), std::string::npos) << msg;
  }
}

TEST(Eval, LossIsTheMeanCrossEntropyOverTheDataWindows) {
  const auto& t = trained();
  // 23 does not divide the documents' lengths: every document ends in a short window.
  const json j = eval_json({"--data", t.tokens.string(), "--seq-len", "23", "--max-tokens", "2000", "--batch", "4"});
  const Reference ref = reference(t.model, t.tokens, 23, 2000);
  EXPECT_EQ(j.at("tokens").get<int64_t>(), 2000);
  EXPECT_EQ(j.at("tokens").get<int64_t>(), ref.tokens);
  EXPECT_EQ(j.at("windows").get<int64_t>(), ref.windows);
  EXPECT_NEAR(j.at("loss").get<double>(), ref.loss, 1e-5 * ref.loss);
  EXPECT_NEAR(j.at("perplexity").get<double>(), std::exp(ref.loss), 1e-4 * std::exp(ref.loss));
  // Byte tokens: bits per byte is the loss in bits.
  EXPECT_NEAR(j.at("bits_per_byte").get<double>(), j.at("loss").get<double>() / std::log(2.0), 1e-9);
  // A short-trained model beats the uniform 8 bits per byte.
  EXPECT_LT(j.at("bits_per_byte").get<double>(), 8.0);
}

TEST(Eval, TextAndItsTokenFileGiveTheSameFigures) {
  const auto& t = trained();
  const json a = eval_json({"--data", t.tokens.string(), "--seq-len", "64", "--max-tokens", "1500"});
  const json b = eval_json({"--data", (t.dir / "text").string(), "--seq-len", "64", "--max-tokens", "1500"});
  EXPECT_EQ(a.at("tokens"), b.at("tokens"));
  EXPECT_NEAR(a.at("loss").get<double>(), b.at("loss").get<double>(), 1e-9);
}

TEST(Eval, WritesThePromptsLogitsAsSafetensorsAndNpy) {
  const auto& t = trained();
  TempDir out;
  const std::string prompt = "the quick brown fox 42 jumps.";
  for (const char* name : {"l.safetensors", "l.npy"}) {
    const auto r = run_cli({"eval", "--model", t.model.string(), "--logits", prompt, "--out", (out / name).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  LoadedModel m = load_model_dir(t.model);
  std::vector<int64_t> ids;
  for (unsigned char c : prompt) ids.push_back(c);
  torch::NoGradGuard no_grad;
  const auto want = m.model->forward(torch::tensor(ids).unsqueeze(0)).squeeze(0);
  std::map<std::string, std::string> meta;
  const auto st = load_safetensors(out / "l.safetensors", &meta);
  ASSERT_EQ(st.count("logits"), 1u);
  EXPECT_EQ(st.at("logits").sizes(), want.sizes());
  EXPECT_LT(max_abs_diff(st.at("logits"), want), 1e-5);
  EXPECT_EQ(meta.at("tokens").substr(0, 8), "116,104,");  // "th"
  // .npy: NumPy 1.0 header with the shape, data from a 64-byte boundary.
  const std::string npy = read_file(out / "l.npy");
  ASSERT_EQ(npy.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = size_t(uint8_t(npy[8])) | size_t(uint8_t(npy[9])) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  EXPECT_NE(npy.find("'shape': (" + std::to_string(ids.size()) + ", 256)"), std::string::npos);
  ASSERT_EQ(npy.size(), 10 + header + ids.size() * 256 * 4);
  auto from_npy = torch::empty({int64_t(ids.size()), 256}, torch::kFloat32);
  std::memcpy(from_npy.data_ptr<float>(), npy.data() + 10 + header, ids.size() * 256 * 4);
  EXPECT_EQ(max_abs_diff(from_npy, st.at("logits")), 0.0);
}

TEST(Eval, BadRequestsExitTwoAndWriteNothing) {
  const auto& t = trained();
  TempDir out;
  const std::string model = t.model.string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--data", t.tokens.string(), "--logits", "x"}, "--data excludes --logits"},
      {{"--logits", "x"}, "--logits: needs --out"},
      {{"--logits", "x", "--out", (out / "l.txt").string()}, "must end in .safetensors or .npy"},
      {{"--data", t.tokens.string(), "--seq-len", "-4"}, "--seq-len: must be 1.."},
      {{"--data", (out / "missing.tokens").string()}, "missing.tokens: no such file or folder"},
      {{"--logits", "", "--out", (out / "l.npy").string()}, "eval: give --data FILE, or --logits PROMPT"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> a = {"eval", "--model", model};
    a.insert(a.end(), extra.begin(), extra.end());
    const auto r = run_cli(a);
    EXPECT_EQ(r.exit_code, 2) << message << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << "wanted \"" << message << "\" in: " << r.err;
    EXPECT_TRUE(out.entries().empty()) << message;
  }
}

// export --model copies a model folder with the transformers files added
// (what they compute is tests/test_hf_export.py's business); bad requests
// exit 2 naming the problem and leave nothing behind.
TEST(ExportModel, CopiesTheFolderWithTheTransformersFilesOrNothing) {
  const auto& t = trained();
  TempDir out;
  const fs::path hf = out / "hf";
  const auto ok = run_cli({"export", "--model", t.model.string(), "--out", hf.string()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  for (const char* name : {"model.safetensors", "config.json", "configuration_flashnas.py", "modeling_flashnas.py",
                           "generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(hf / name)) << name;
  }
  EXPECT_FALSE(fs::exists(hf / "checkpoint"));
  const json cfg = load_json_file(hf / "config.json");
  EXPECT_EQ(cfg.at("model_type"), "flashnas");
  EXPECT_EQ(cfg.at("auto_map").at("AutoModelForCausalLM"), "modeling_flashnas.FlashnasForCausalLM");
  EXPECT_EQ(cfg.at("arch"), load_json_file(t.model / "config.json").at("arch"));
  // The weights are the run's, byte for byte.
  EXPECT_EQ(read_file(hf / "model.safetensors"), read_file(t.model / "model.safetensors"));
  // flashnas itself still reads the folder.
  const auto gen = run_cli({"generate", "--model", hf.string(), "--prompt", "a", "--tokens", "2", "--threads", "1"});
  EXPECT_EQ(gen.exit_code, 0) << gen.err;

  TempDir bad;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--model", (bad / "missing").string(), "--out", (bad / "o").string()}, "not a model folder"},
      {{"--model", t.model.string(), "--out", hf.string()}, "exists; give a new folder"},
      {{"--model", t.model.string(), "--db", "x.db", "--out", (bad / "o").string()}, "--db excludes --model"},
      {{"--out", (bad / "o").string()}, "give --db and --study"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> a = {"export"};
    a.insert(a.end(), extra.begin(), extra.end());
    const auto r = run_cli(a);
    EXPECT_EQ(r.exit_code, 2) << message << ": " << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << "wanted \"" << message << "\" in: " << r.err;
    EXPECT_TRUE(bad.entries().empty()) << message;
  }
}

}  // namespace
}  // namespace flashnas::test
