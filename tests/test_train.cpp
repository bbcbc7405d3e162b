// train/: corpora, tokenizers, token files, the split and batches, safetensors
// (read back by an independent reader), and the trainer: weight
// normalization, determinism, resume, divergence.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "supernet/hybrid_lm.h"
#include "tests/test_util.h"
#include "train/corpus.h"
#include "train/dataset.h"
#include "train/safetensors.h"
#include "train/token_file.h"
#include "train/tokenizer.h"
#include "train/trainer.h"
#include "train/weight_norm.h"

namespace flashnas {
namespace {

using test::TempDir;
const auto& expect_input_error = test::input_error_of;
namespace fs = std::filesystem;


// A small deterministic corpus of `files` documents of English-like text.
void write_corpus(const TempDir& dir, int files, int sentences) {
  const char* words[] = {"the", "model", "latency", "token", "search", "budget", "layer", "attention",
                         "state", "decode", "train", "loss", "device", "mamba", "delta", "rule"};
  uint64_t x = 7;
  for (int f = 0; f < files; ++f) {
    std::string text;
    for (int s = 0; s < sentences; ++s) {
      for (int w = 0; w < 8; ++w) {
        x = splitmix64(x);
        text += std::string(words[x % 16]) + (w == 7 ? ".\n" : " ");
      }
    }
    char name[32];
    std::snprintf(name, sizeof name, "doc%02d.txt", f);
    dir.write(name, text);
  }
}

TEST(Corpus, ReadsFoldersSortedAndRejectsBadFiles) {
  TempDir dir;
  dir.write("b.txt", "second");
  dir.write("a.txt", "first");
  const auto docs = read_corpus(dir.path());
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].text, "first");
  dir.write("c.txt", "");
  EXPECT_NE(expect_input_error([&] { read_corpus(dir.path()); }).find("c.txt: file is empty"), std::string::npos);
  fs::remove(dir / "c.txt");
  dir.write("d.bin", std::string("ab\0cd", 5));
  EXPECT_NE(expect_input_error([&] { read_corpus(dir.path()); }).find("d.bin: looks binary (NUL byte at offset 2)"),
            std::string::npos);
  fs::remove(dir / "d.bin");
  dir.write("e.txt", "ok \xff bad");
  EXPECT_NE(expect_input_error([&] { read_corpus(dir.path()); }).find("e.txt: invalid UTF-8 at byte offset 3"),
            std::string::npos);
  EXPECT_NE(expect_input_error([&] { read_corpus(dir / "missing"); }).find("no such file or directory"),
            std::string::npos);
}

TEST(Corpus, Utf8ValidationAndCutting) {
  EXPECT_EQ(first_invalid_utf8("plain \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), -1);  // é € 😀
  EXPECT_EQ(first_invalid_utf8("\xc0\xaf"), 0);                               // overlong
  EXPECT_EQ(first_invalid_utf8("ab\xed\xa0\x80"), 2);                        // surrogate
  EXPECT_EQ(first_invalid_utf8("abc\xe2\x82"), 3);                           // truncated
  TempDir dir;
  std::string big;
  for (int i = 0; i < 100; ++i) big += "line " + std::to_string(i) + "\n";
  dir.write("big.txt", big);
  const auto docs = read_corpus(dir / "big.txt", 100);
  EXPECT_GT(docs.size(), 5u);
  std::string joined;
  for (const auto& d : docs) {
    EXPECT_LE(d.text.size(), 100u);
    EXPECT_EQ(d.text.back(), '\n');  // cut at line ends
    joined += d.text;
  }
  EXPECT_EQ(joined, big);
}

TEST(TokenFileTest, RoundTripAndCorruption) {
  TempDir dir;
  auto tok = make_byte_tokenizer();
  std::vector<Document> docs = {{"a", "hello"}, {"b", "w\xc3\xb6rld!"}};
  EXPECT_EQ(write_token_file(dir / "t.tokens", docs, *tok), 5 + 7);
  EXPECT_TRUE(is_token_file(dir / "t.tokens"));
  TokenFile f(dir / "t.tokens");
  EXPECT_EQ(f.vocab_size(), 256);
  EXPECT_EQ(f.num_docs(), 2);
  EXPECT_EQ(f.token_bytes(), 2);
  EXPECT_EQ(f.doc_begin(1), 5);
  EXPECT_EQ(f.doc_bytes(1), 7);
  EXPECT_EQ(f.meta()["tokenizer"]["type"], "byte");
  std::vector<int64_t> got(7);
  f.read(5, 7, got.data());
  std::vector<int32_t> ids(got.begin(), got.end());
  EXPECT_EQ(tok->decode(ids), "w\xc3\xb6rld!");
  // Truncation and foreign files are refused with the file's name.
  const std::string bytes = read_file(dir / "t.tokens");
  dir.write("cut.tokens", bytes.substr(0, bytes.size() - 3));
  EXPECT_NE(expect_input_error([&] { TokenFile g(dir / "cut.tokens"); }).find("truncated or corrupt"),
            std::string::npos);
  dir.write("x.tokens", std::string(64, 'x'));
  EXPECT_NE(expect_input_error([&] { TokenFile g(dir / "x.tokens"); }).find("x.tokens: not a flashnas token file"),
            std::string::npos);
}

TEST(Tokenizer, SentencePieceTrainsAndRoundTrips) {
  TempDir dir;
  write_corpus(dir, 4, 200);
  // Byte fallback needs the 256 byte pieces plus the corpus's characters.
  train_sentencepiece(list_text_files(dir.path()), 290, dir / "sp.model");
  auto sp = load_sentencepiece(dir / "sp.model");
  EXPECT_EQ(sp->vocab_size(), 290);
  const std::string text = "the model decode latency budget.";
  EXPECT_EQ(sp->decode(sp->encode(text)), text);
  EXPECT_LT(sp->encode(text).size(), text.size());  // it merges bytes
  // Code and JSON keep their structure: newlines, tabs, indentation and runs of spaces round-trip.
  for (const std::string t : {"def f(x):\n    return {\"a\": [1, 2]}\n", "\tindented\n\n  two  spaces  ", " lead"}) {
    EXPECT_EQ(sp->decode(sp->encode(t)), t);
  }
  TempDir out;
  sp->save_files(out.path(), "tokenizer.model");
  auto again = tokenizer_from_json(sp->describe("tokenizer.model"), out.path(), "config.json");
  EXPECT_EQ(again->encode(text), sp->encode(text));
  EXPECT_NE(expect_input_error([&] { train_sentencepiece(list_text_files(dir.path()), 64, dir / "small.model"); })
                .find("Vocabulary size is smaller than required_chars"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(dir / "small.model"));
  EXPECT_NE(expect_input_error([&] { tokenizer_from_json(json{{"type", "bpe"}}, out.path(), "c.json"); })
                .find("unknown tokenizer \"bpe\"; allowed: byte, sentencepiece"),
            std::string::npos);
}

std::shared_ptr<TokenDataset> make_dataset(const TempDir& dir, int files = 12, int sentences = 60) {
  write_corpus(dir, files, sentences);
  auto tok = make_byte_tokenizer();
  write_token_file(dir / "data.tokens", read_corpus(dir.path()), *tok);
  return std::make_shared<TokenDataset>(std::make_shared<TokenFile>(dir / "data.tokens"), 0.2, 3);
}

TEST(Dataset, SplitByDocumentAndDeterministicBatches) {
  TempDir dir;
  // Every document is one distinct letter repeated: a window that leaks across
  // the split shows up as a letter seen in both splits.
  std::vector<Document> docs;
  for (int i = 0; i < 20; ++i) docs.push_back({"d" + std::to_string(i), std::string(300, 'a' + i)});
  auto tok = make_byte_tokenizer();
  write_token_file(dir / "x.tokens", docs, *tok);
  auto file = std::make_shared<TokenFile>(dir / "x.tokens");
  TokenDataset ds(file, 0.25, 11);
  EXPECT_GT(ds.train().docs, 0);
  EXPECT_GT(ds.val().docs, 0);
  EXPECT_EQ(ds.train().docs + ds.val().docs, 20);
  EXPECT_EQ(ds.train().tokens + ds.val().tokens, 6000);
  TokenDataset again(file, 0.25, 11);
  EXPECT_EQ(again.val().docs, ds.val().docs);
  EXPECT_TRUE(torch::equal(ds.train_batch(5, 4, 50), again.train_batch(5, 4, 50)));
  EXPECT_FALSE(torch::equal(ds.train_batch(5, 4, 50), ds.train_batch(6, 4, 50)));
  EXPECT_TRUE(torch::equal(ds.val_batch(0, 4, 50), again.val_batch(0, 4, 50)));
  // Each batch comes from its own split's documents only.
  std::set<int64_t> val_letters, train_letters;
  for (int i = 0; i < 10; ++i) {
    auto b = ds.train_batch(i, 4, 50);
    for (int64_t v : std::vector<int64_t>(b.data_ptr<int64_t>(), b.data_ptr<int64_t>() + b.numel())) train_letters.insert(v);
    auto vb = ds.val_batch(i, 4, 50);
    for (int64_t v : std::vector<int64_t>(vb.data_ptr<int64_t>(), vb.data_ptr<int64_t>() + vb.numel())) val_letters.insert(v);
  }
  for (int64_t v : val_letters) EXPECT_EQ(train_letters.count(v), 0u) << "letter " << char(v) << " in both splits";
  EXPECT_EQ(static_cast<int64_t>(val_letters.size()), ds.val().docs);
  // Unigram entropy: the training docs are equally long, one letter each: log2(docs) exactly.
  EXPECT_NEAR(ds.unigram_bits_per_byte(), std::log2(static_cast<double>(ds.train().docs)), 1e-12);
  // One document cannot be split by document.
  write_token_file(dir / "one.tokens", {{"a", "only one"}}, *tok);
  EXPECT_NE(expect_input_error([&] { TokenDataset d(std::make_shared<TokenFile>(dir / "one.tokens"), 0.1, 0); })
                .find("holds 1 document(s); a train/validation split by document needs at least 2"),
            std::string::npos);
}

// An independent safetensors reader: parses the 8-byte length, the JSON
// header and the raw data by hand (not through load_safetensors).
std::map<std::string, std::pair<std::string, std::vector<int64_t>>> read_header(const std::string& bytes,
                                                                               size_t* data_start) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);  // little-endian
  *data_start = 8 + n;
  const json h = json::parse(bytes.substr(8, n));
  std::map<std::string, std::pair<std::string, std::vector<int64_t>>> out;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    out[it.key()] = {it.value()["dtype"].get<std::string>(), it.value()["shape"].get<std::vector<int64_t>>()};
  }
  return out;
}

TEST(Safetensors, IndependentReaderSeesEveryNameShapeDtypeAndValue) {
  TempDir dir;
  torch::manual_seed(1);
  const ArchSpec spec = ArchSpec::parse(std::string(R"({"d_model": 32, "n_meta_tokens": 2, "layers": [
      {"type": "attn", "n_heads": 4}, {"type": "mamba2", "head_dim": 16, "d_state": 8},
      {"type": "gdn", "n_heads": 2, "head_k_dim": 8}, {"type": "ffn", "d_ff": 48}]})"), "t");
  HybridLM model(spec);
  std::map<std::string, torch::Tensor> named;
  for (const auto& p : model->named_parameters()) named[p.key()] = p.value();
  save_safetensors(dir / "m.safetensors", named, {{"arch_hash", spec.hash()}});
  const std::string bytes = read_file(dir / "m.safetensors");
  size_t start = 0;
  const auto header = read_header(bytes, &start);
  EXPECT_EQ(start % 8, 0u);  // header padded to 8 bytes
  ASSERT_EQ(header.size(), named.size());
  const json h = json::parse(bytes.substr(8, start - 8));
  EXPECT_EQ(h["__metadata__"]["arch_hash"], spec.hash());
  for (const auto& [name, t] : named) {
    ASSERT_TRUE(header.count(name)) << name;
    EXPECT_EQ(header.at(name).first, "F32") << name;
    EXPECT_EQ(header.at(name).second, t.sizes().vec()) << name;
    const auto off = h[name]["data_offsets"].get<std::vector<size_t>>();
    ASSERT_EQ(off[1] - off[0], static_cast<size_t>(t.numel()) * 4) << name;
    std::vector<float> raw(t.numel());
    std::memcpy(raw.data(), bytes.data() + start + off[0], off[1] - off[0]);
    auto c = t.contiguous();
    EXPECT_EQ(std::memcmp(raw.data(), c.data_ptr<float>(), raw.size() * 4), 0) << name;
  }
  // And the library's own reader agrees.
  std::map<std::string, std::string> meta;
  const auto back = load_safetensors(dir / "m.safetensors", &meta);
  EXPECT_EQ(meta["arch_hash"], spec.hash());
  for (const auto& [name, t] : named) EXPECT_TRUE(torch::equal(back.at(name), t)) << name;
}

// A safetensors file from a header text and `data_bytes` zero bytes of data.
std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

TEST(Safetensors, DamagedHeadersAreRefusedByNameBeforeAnythingIsAllocated) {
  TempDir dir;
  const auto path = dir / "w.safetensors";
  const std::vector<std::pair<std::string, std::string>> cases = {
      // A shape of 2^80 elements with 8 bytes of data: refused, not allocated.
      {R"({"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 8]}})",
       "tensor \"w\": dimension 1099511627776 exceeds the file's data"},
      {R"({"w": {"dtype": 5, "shape": [2], "data_offsets": [0, 8]}})", "tensor \"w\" has unsupported dtype 5"},
      {R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", "\"shape\" holds -2, not a size"},
      {R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "data offsets [8, 0]"},
      {R"({"w": [1, 2]})", "tensor \"w\" needs an object with \"dtype\", \"shape\" and \"data_offsets\""},
      {R"({"__metadata__": {"format": 1}})", "\"__metadata__\" field \"format\" is not a string"},
      {R"([1, 2, 3])", "the safetensors header is not a JSON object"},
  };
  for (const auto& [header, message] : cases) {
    write_file_atomic(path, safetensors_bytes(header, 8));
    try {
      (void)load_safetensors(path);
      ADD_FAILURE() << "accepted " << header;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
  // The good form of the same file reads back.
  write_file_atomic(path, safetensors_bytes(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 8));
  EXPECT_TRUE(torch::equal(load_safetensors(path).at("w"), torch::zeros({2})));
}

const char* kTinyArch = R"({"d_model": 32, "n_meta_tokens": 2, "tie_embeddings": true, "layers": [
    {"type": "deltanet", "n_heads": 2, "chunk_size": 16}, {"type": "ffn", "d_ff": 64},
    {"type": "mamba2", "head_dim": 16, "d_state": 8, "chunk_size": 16}, {"type": "attn", "n_heads": 4}]})";

TrainRecipe tiny_recipe() {
  TrainRecipe r;
  r.tokens = 12 * 4 * 32;
  r.batch_size = 4;
  r.seq_len = 32;
  r.eval_interval = 4;
  r.eval_batches = 2;
  r.val_fraction = 0.2;
  r.seed = 3;
  r.threads = 1;
  return r;
}

TrainResult train_tiny(const std::shared_ptr<TokenDataset>& ds, const fs::path& out, TrainRecipe r, bool resume = false,
                       int64_t stop = -1) {
  Trainer t(ArchSpec::parse(kTinyArch, "tiny"), ds, std::shared_ptr<Tokenizer>(make_byte_tokenizer()), r, out);
  return t.run(resume, stop);
}

void expect_same_curve(const TrainResult& a, const TrainResult& b) {
  ASSERT_EQ(a.curve.size(), b.curve.size());
  for (size_t i = 0; i < a.curve.size(); ++i) {
    EXPECT_EQ(a.curve[i].step, b.curve[i].step);
    EXPECT_EQ(a.curve[i].train_loss, b.curve[i].train_loss) << "point " << i;  // bit-identical on CPU
    EXPECT_EQ(a.curve[i].val_loss, b.curve[i].val_loss) << "point " << i;
    EXPECT_EQ(a.curve[i].lr, b.curve[i].lr);
  }
}

TEST(Trainer, SameSeedSameResultAndLossFalls) {
  TempDir data, o1, o2, o3;
  auto ds = make_dataset(data);
  const TrainResult a = train_tiny(ds, o1.path(), tiny_recipe());
  const TrainResult b = train_tiny(ds, o2.path(), tiny_recipe());
  expect_same_curve(a, b);
  EXPECT_TRUE(a.completed);
  EXPECT_EQ(a.curve.size(), 3u);
  EXPECT_LT(a.curve.back().val_loss, std::log(256.0));  // better than uniform over bytes
  EXPECT_LT(a.curve.back().train_loss, a.curve.front().train_loss);
  TrainRecipe other = tiny_recipe();
  other.seed = 4;
  const TrainResult c = train_tiny(ds, o3.path(), other);
  EXPECT_NE(a.curve.back().val_loss, c.curve.back().val_loss);
  // The run folder holds the final model, config and curve.
  for (const char* f : {"model.safetensors", "config.json", "curve.csv", "checkpoint/state.json",
                        "checkpoint/optimizer.pt", "checkpoint/model.safetensors"}) {
    EXPECT_TRUE(fs::exists(o1 / f)) << f;
  }
  const json config = load_json_file(o1 / "config.json");
  EXPECT_EQ(config["arch_hash"], ArchSpec::parse(kTinyArch, "t").hash());
  EXPECT_EQ(config["tokenizer"]["type"], "byte");
  EXPECT_EQ(config["recipe"]["seed"], 3);
}

TEST(Trainer, InterruptedAndResumedEqualsUninterrupted) {
  TempDir data, full, split;
  auto ds = make_dataset(data);
  const TrainResult a = train_tiny(ds, full.path(), tiny_recipe());
  // Stop between evaluation points (step 6 of 12; evaluations at 4, 8, 12), then resume.
  const TrainResult part = train_tiny(ds, split.path(), tiny_recipe(), false, 6);
  EXPECT_FALSE(part.completed);
  EXPECT_EQ(part.steps, 6);
  EXPECT_FALSE(fs::exists(split / "model.safetensors"));  // no final model before the end
  const TrainResult b = train_tiny(ds, split.path(), tiny_recipe(), true);
  EXPECT_TRUE(b.completed);
  expect_same_curve(a, b);
  const auto pa = load_safetensors(full / "model.safetensors"), pb = load_safetensors(split / "model.safetensors");
  for (const auto& [name, t] : pa) EXPECT_TRUE(torch::equal(t, pb.at(name))) << name;
  // A fresh run into a folder holding a checkpoint is refused; a resume with another recipe too.
  EXPECT_NE(expect_input_error([&] { train_tiny(ds, split.path(), tiny_recipe()); }).find("pass --resume"),
            std::string::npos);
  TrainRecipe other = tiny_recipe();
  other.lr = 2e-3;
  EXPECT_NE(expect_input_error([&] { train_tiny(ds, split.path(), other, true); })
                .find("made with another architecture, recipe or data"),
            std::string::npos);
}

TEST(Trainer, WeightNormKeepsUnitRowsAndColumns) {
  TempDir data, on, off;
  auto ds = make_dataset(data);
  train_tiny(ds, on.path(), tiny_recipe());
  TrainRecipe r = tiny_recipe();
  r.weight_norm = false;
  train_tiny(ds, off.path(), r);
  HybridLM model(ArchSpec::parse(kTinyArch, "t"));
  const WeightNormPlan plan = weight_norm_plan(*model);
  const auto won = load_safetensors(on / "model.safetensors"), woff = load_safetensors(off / "model.safetensors");
  auto max_dev = [](const torch::Tensor& norms) { return (norms - 1).abs().max().item<double>(); };
  for (const auto& n : plan.row_names) {
    EXPECT_LE(max_dev(won.at(n).norm(2, 1)), 1e-5) << n;
    EXPECT_GT(max_dev(woff.at(n).norm(2, 1)), 1e-2) << n;
  }
  for (const auto& n : plan.col_names) {
    EXPECT_LE(max_dev(won.at(n).norm(2, 0)), 1e-5) << n;
    EXPECT_GT(max_dev(woff.at(n).norm(2, 0)), 1e-2) << n;
  }
  // Untouched by the projection: embeddings, norm gains, convs and SSM scalars stay off the sphere.
  for (const char* n : {"embed_tokens.weight", "layers.2.mamba2.conv1d.weight", "layers.0.deltanet.q_conv1d.weight"}) {
    EXPECT_GT(max_dev(won.at(n).flatten(1).norm(2, 1)), 1e-2) << n;
  }
  EXPECT_FALSE(torch::equal(won.at("layers.2.mamba2.A_log"), woff.at("layers.2.mamba2.A_log")));  // still trained
}

TEST(Trainer, DivergenceStopsWithAReason) {
  TempDir data, out;
  auto ds = make_dataset(data);
  TrainRecipe r = tiny_recipe();
  r.lr = 1e30;  // weights overflow float32 within a few steps (1e38 would overflow AdamW's own step size first)
  r.weight_norm = false;
  r.grad_clip = 0;
  r.warmup_fraction = 0;
  try {
    train_tiny(ds, out.path(), r);
    FAIL() << "expected divergence";
  } catch (const DivergedError& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged at step"), std::string::npos) << e.what();
  }
}

TEST(Recipe, ScheduleAndValidation) {
  TrainRecipe r;
  r.tokens = 100 * 16 * 256;
  r.warmup_fraction = 0.1;
  EXPECT_EQ(r.steps(), 100);
  EXPECT_EQ(r.warmup_steps(), 10);
  EXPECT_DOUBLE_EQ(r.lr_at(0), 1e-4);
  EXPECT_DOUBLE_EQ(r.lr_at(9), 1e-3);
  EXPECT_DOUBLE_EQ(r.lr_at(10), 1e-3);  // cosine starts at the peak
  EXPECT_NEAR(r.lr_at(99), 1e-4, 1e-6);  // and ends near the floor
  EXPECT_LT(r.lr_at(60), r.lr_at(40));
  r.val_fraction = 1.5;
  EXPECT_NE(expect_input_error([&] { r.validate(); }).find("--val-fraction"), std::string::npos);
  EXPECT_EQ(TrainRecipe::from_json(tiny_recipe().to_json(), "x").to_json(), tiny_recipe().to_json());
}

TEST(Recipe, WsdHoldsThePeakIndependentlyOfTheLength) {
  TrainRecipe a;
  a.batch_size = 1;
  a.seq_len = 10;
  a.schedule = "wsd";
  a.decay_fraction = 0.2;
  a.min_lr_ratio = 0.1;
  a.warmup_tokens = 40;  // 4 steps, whatever the length
  a.tokens = 200;        // 20 steps: stable end 16
  TrainRecipe b = a;
  b.tokens = 600;  // 60 steps: stable end 48
  EXPECT_EQ(a.warmup_steps(), 4);
  EXPECT_EQ(b.warmup_steps(), 4);
  EXPECT_EQ(a.stable_end_step(), 16);
  EXPECT_EQ(b.stable_end_step(), 48);
  for (int64_t s = 0; s < a.stable_end_step(); ++s) EXPECT_EQ(a.lr_at(s), b.lr_at(s)) << s;
  EXPECT_DOUBLE_EQ(a.lr_at(0), 0.25e-3);
  EXPECT_DOUBLE_EQ(a.lr_at(3), 1e-3);
  EXPECT_DOUBLE_EQ(a.lr_at(15), 1e-3);
  EXPECT_DOUBLE_EQ(a.lr_at(16), 1e-3 - 0.9e-3 / 4);  // linear decay over the last 4 steps
  EXPECT_DOUBLE_EQ(a.lr_at(19), 1e-4);               // ends at the floor
  EXPECT_LT(a.lr_at(17), a.lr_at(16));
  // The cosine schedule depends on the length from the first step after warmup.
  TrainRecipe c = a, d = b;
  c.schedule = d.schedule = "cosine";
  EXPECT_EQ(c.stable_end_step(), 0);
  EXPECT_NE(c.lr_at(5), d.lr_at(5));
  // Bad values name the flag.
  TrainRecipe bad = a;
  bad.schedule = "linear";
  EXPECT_NE(expect_input_error([&] { bad.validate(); }).find("--schedule: must be \"cosine\" or \"wsd\""),
            std::string::npos);
  bad = a;
  bad.warmup_tokens = 190;
  EXPECT_NE(expect_input_error([&] { bad.validate(); }).find("--warmup-tokens: the warmup (19 steps) must end before"),
            std::string::npos);
  bad = a;
  bad.decay_fraction = 0;
  EXPECT_NE(expect_input_error([&] { bad.validate(); }).find("--decay"), std::string::npos);
  EXPECT_EQ(TrainRecipe::from_json(a.to_json(), "x").to_json(), a.to_json());
}

TEST(Trainer, WsdContinuedFromAShorterRunEqualsARunPlannedForTheLongerLength) {
  TempDir data, shortrun, straight;
  auto ds = make_dataset(data);
  TrainRecipe r1 = tiny_recipe();
  r1.schedule = "wsd";
  r1.warmup_tokens = 2 * r1.tokens_per_step();
  r1.tokens = 10 * r1.tokens_per_step();  // stable end: step 8
  r1.eval_interval = 4;
  TrainRecipe r2 = r1;
  r2.tokens = 25 * r1.tokens_per_step();  // stable end: step 20
  auto tok = std::shared_ptr<Tokenizer>(make_byte_tokenizer());
  const ArchSpec arch = ArchSpec::parse(kTinyArch, "tiny");
  // Rung 1, keeping its stable state; then the promotion continues it.
  Trainer t1(arch, ds, tok, r1, shortrun.path());
  t1.keep_stable(true);
  const TrainResult a1 = t1.run(false);
  ASSERT_TRUE(fs::exists(Trainer::stable_dir(shortrun.path(), r1) / "state.json"));
  fs::remove_all(shortrun.path() / "checkpoint");
  Trainer t2(arch, ds, tok, r2, shortrun.path());
  t2.keep_stable(true);
  const TrainResult a2 = t2.run_from(Trainer::stable_dir(shortrun.path(), r1));
  EXPECT_TRUE(fs::exists(Trainer::stable_dir(shortrun.path(), r2) / "state.json"));
  // Straight to rung 2.
  const TrainResult b2 = train_tiny(ds, straight.path(), r2);
  expect_same_curve(a2, b2);
  EXPECT_EQ(a2.val_loss, b2.val_loss);  // bit for bit
  const auto wa = load_safetensors(shortrun.path() / "model.safetensors");
  const auto wb = load_safetensors(straight.path() / "model.safetensors");
  for (const auto& [name, t] : wb) EXPECT_TRUE(torch::equal(t, wa.at(name))) << name;
  EXPECT_NE(a1.val_loss, a2.val_loss);
  // The shorter run's curve up to its stable end is the longer run's too.
  EXPECT_EQ(a1.curve.at(0).val_loss, b2.curve.at(0).val_loss);
  EXPECT_EQ(a1.curve.at(1).val_loss, b2.curve.at(1).val_loss);
  // A continuation from another recipe, or past the stable end, is refused.
  TempDir other;
  TrainRecipe r3 = r2;
  r3.lr = 2e-3;
  Trainer t3(arch, ds, tok, r3, other.path());
  EXPECT_NE(expect_input_error([&] { t3.run_from(Trainer::stable_dir(shortrun.path(), r1)); })
                .find("was made with another architecture, recipe or data"),
            std::string::npos);
  TrainRecipe r4 = r1;
  r4.tokens = 9 * r1.tokens_per_step();  // stable end 7 < 8
  Trainer t4(arch, ds, tok, r4, other.path());
  EXPECT_NE(expect_input_error([&] { t4.run_from(Trainer::stable_dir(shortrun.path(), r1)); }).find("past this run's stable end"),
            std::string::npos);
}

}  // namespace
}  // namespace flashnas
