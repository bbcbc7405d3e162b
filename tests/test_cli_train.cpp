// End-to-end: flashnas data prepare/info and flashnas train, including bad
// data and bad flags (message, exit code 2, nothing written).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>

#include "common/files.h"
#include "common/json_io.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::run_cli;
using test::TempDir;
namespace fs = std::filesystem;

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

const char* kArch = R"({"d_model": 32, "tie_embeddings": true, "layers": [
    {"type": "mamba2", "head_dim": 16, "d_state": 8, "chunk_size": 16}, {"type": "ffn", "d_ff": 64},
    {"type": "attn", "n_heads": 4}]})";

void corpus(const TempDir& dir, const std::string& sub) {
  fs::create_directories(dir / sub);
  for (int f = 0; f < 10; ++f) {
    std::string text;
    for (int i = 0; i < 80; ++i) text += "line " + std::to_string(i * (f + 3) % 97) + " of the flashnas corpus.\n";
    std::ofstream(dir / sub / ("f" + std::to_string(f) + ".txt")) << text;
  }
}

TEST(CliData, PrepareAndInfo) {
  TempDir dir;
  corpus(dir, "text");
  auto r = run_cli({"data", "prepare", "--input", (dir / "text").string(), "--out", (dir / "c.tokens").string(),
                    "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["docs"], 10);
  EXPECT_EQ(j["tokens"], j["bytes"]);  // byte-level
  r = run_cli({"data", "info", (dir / "c.tokens").string(), "--json", "--val-fraction", "0.3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json info = json::parse(r.out);
  EXPECT_EQ(info["tokens"], j["tokens"]);
  EXPECT_EQ(info["train"]["docs"].get<int>() + info["val"]["docs"].get<int>(), 10);
  EXPECT_GT(info["unigram_bits_per_byte"].get<double>(), 1.0);
  EXPECT_LT(info["unigram_bits_per_byte"].get<double>(), 8.0);
}

TEST(CliData, BadInputsNameTheFileAndWriteNothing) {
  TempDir dir;
  dir.write("empty.txt", "");
  auto r = run_cli({"data", "prepare", "--input", (dir / "empty.txt").string(), "--out", (dir / "o.tokens").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "empty.txt: file is empty")) << r.err;
  dir.write("bin.dat", std::string("\x7f" "ELF\0\0\1", 7));
  r = run_cli({"data", "prepare", "--input", (dir / "bin.dat").string(), "--out", (dir / "o.tokens").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "bin.dat: looks binary")) << r.err;
  r = run_cli({"data", "info", (dir / "bin.dat").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "bin.dat: not a flashnas token file")) << r.err;
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"bin.dat", "empty.txt"}));
}

// The README's SentencePiece flow: a tokenizer, a token file prepared with it
// (the model travels beside it as <out>.tokenizer.model), training on the
// token file alone. A different file already at that name is never replaced.
TEST(CliData, SentencePieceTokenFilesCarryTheirModel) {
  TempDir dir;
  corpus(dir, "text");
  const std::string model = (dir / "tok.model").string(), tokens = (dir / "t.tokens").string();
  auto r = run_cli({"data", "tokenizer", "--input", (dir / "text").string(), "--out", model, "--vocab-size", "290"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_cli({"data", "prepare", "--input", (dir / "text").string(), "--tokenizer", model, "--out", tokens});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir / "t.tokens.tokenizer.model"), read_file(model));
  json arch = json::parse(kArch);
  arch["vocab_size"] = 290;
  dir.write("arch.json", arch.dump());
  r = run_cli({"train", "--arch", (dir / "arch.json").string(), "--data", tokens, "--tokens", "512", "--batch-size", "4",
               "--seq-len", "32", "--eval-interval", "0", "--eval-batches", "1", "--val-fraction", "0.3", "--out",
               (dir / "run").string(), "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(dir / "run" / "tokenizer.model"), read_file(model));
  dir.write("u.tokens.tokenizer.model", "a user's file\n");
  r = run_cli({"data", "prepare", "--input", (dir / "text").string(), "--tokenizer", model, "--out",
               (dir / "u.tokens").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "u.tokens.tokenizer.model exists and is another file")) << r.err;
  EXPECT_FALSE(fs::exists(dir / "u.tokens"));
  EXPECT_EQ(read_file(dir / "u.tokens.tokenizer.model"), "a user's file\n");
}

TEST(CliTrain, TrainsAndReportsJson) {
  TempDir dir;
  corpus(dir, "text");
  dir.write("arch.json", kArch);
  auto r = run_cli({"train", "--arch", (dir / "arch.json").string(), "--data", (dir / "text").string(), "--tokens",
                    "4096", "--batch-size", "4", "--seq-len", "32", "--eval-interval", "16", "--eval-batches", "2",
                    "--val-fraction", "0.3", "--out", (dir / "run").string(), "--json", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* k : {"val_loss", "val_bpb", "tokens", "tokens_per_s", "params", "unigram_bpb"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["tokens"], 4096);
  EXPECT_TRUE(j["completed"].get<bool>());
  EXPECT_LT(j["val_loss"].get<double>(), std::log(256.0));
  EXPECT_TRUE(contains(r.err, "step 32/32")) << r.err;  // progress lines on stderr
  for (const char* f : {"model.safetensors", "config.json", "curve.csv", "data.tokens"}) {
    EXPECT_TRUE(fs::exists(dir / "run" / f)) << f;
  }
}

// SIGTERM during training (raised at step 5 by the test-only fault hook, so
// no timing is involved): the run stops after that step with a checkpoint,
// exits 143 saying how to continue, and --resume finishes it with the same
// result as a run never stopped.
TEST(CliTrain, SigtermStopsAtAStepBoundaryAndResumeFinishesTheSameRun) {
  TempDir dir;
  corpus(dir, "text");
  dir.write("arch.json", kArch);
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{"train", "--arch", (dir / "arch.json").string(), "--data", (dir / "text").string(),
                                    "--tokens", "2048", "--batch-size", "4", "--seq-len", "32", "--eval-interval", "8",
                                    "--eval-batches", "2", "--val-fraction", "0.3", "--out", (dir / out).string(),
                                    "--json", "--threads", "1"};
  };
  setenv("FLASHNAS_FAULT", "term-train-step:5", 1);
  auto r = run_cli(args("run"));
  unsetenv("FLASHNAS_FAULT");
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_TRUE(contains(r.err, "train: stopped after step 5 of 16")) << r.err;
  EXPECT_TRUE(contains(r.err, "add --resume to the same command to continue (stopped by SIGTERM)")) << r.err;
  auto resume = args("run");
  resume.push_back("--resume");
  r = run_cli(resume);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto whole = run_cli(args("whole"));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const json a = json::parse(r.out), b = json::parse(whole.out);
  EXPECT_TRUE(a["completed"].get<bool>());
  EXPECT_EQ(a["val_loss"].get<double>(), b["val_loss"].get<double>()) << "a stopped and resumed run is the same run";
}

// --split-seed fixes the held-out documents while --seed changes the
// initialisation and batches: the way to repeat a comparison's run by hand.
TEST(CliTrain, SplitSeedKeepsTheHeldOutDocumentsAcrossSeeds) {
  TempDir dir;
  corpus(dir, "text");
  dir.write("arch.json", kArch);
  auto r = run_cli({"data", "prepare", "--input", (dir / "text").string(), "--out", (dir / "c.tokens").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto train = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> a = {"train", "--arch", (dir / "arch.json").string(), "--data", (dir / "c.tokens").string(),
                                  "--tokens", "1024", "--batch-size", "4", "--seq-len", "32", "--eval-interval", "0",
                                  "--eval-batches", "2", "--val-fraction", "0.3", "--out", (dir / out).string(),
                                  "--quiet", "--threads", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    const auto res = run_cli(a);
    EXPECT_EQ(res.exit_code, 0) << res.err;
    return json::parse(read_file(dir / out / "config.json"));
  };
  const json base = train("s0", {"--seed", "0"});
  const json fixed = train("s3-split0", {"--seed", "3", "--split-seed", "0"});
  const json moved = train("s3", {"--seed", "3"});
  EXPECT_EQ(fixed["data"], base["data"]) << "the same documents held out";
  EXPECT_EQ(fixed["recipe"]["seed"], 3);
  EXPECT_NE(fixed["result"]["val_loss"], base["result"]["val_loss"]) << "another initialisation";
  EXPECT_EQ(moved["data"]["split"]["seed"], 3) << "without --split-seed the split follows --seed";
  EXPECT_EQ(base["data"]["split"]["seed"], 0);
}

// A checkpoint that cannot be written (a file-size limit stands in for a full
// disk: no root needed, nothing timed) is a clean error naming it, exit 1,
// with no half-written checkpoint folder left behind.
TEST(CliTrain, ACheckpointThatCannotBeWrittenIsACleanError) {
  TempDir dir;
  corpus(dir, "text");
  dir.write("arch.json", kArch);
  const std::string out = (dir / "run").string();
  std::string cmd = "ulimit -f 60; trap '' XFSZ; '" + std::string(test::flashnas_bin()) + "' train --arch '" +
                    (dir / "arch.json").string() + "' --data '" + (dir / "text").string() +
                    "' --tokens 4096 --batch-size 4 --seq-len 32 --eval-interval 8 --eval-batches 2 --val-fraction 0.3"
                    " --threads 1 --out '" + out + "' 2>'" + (dir / "err.txt").string() + "'";
  const int status = std::system(("bash -c \"" + cmd + "\"").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "an I/O failure, not a crash (134) nor bad input (2)";
  const std::string err = read_file(dir / "err.txt");
  EXPECT_TRUE(contains(err, "run/checkpoint: cannot write the checkpoint of step 8 (")) << err;
  EXPECT_TRUE(contains(err, "File too large); the previous checkpoint, if any, is intact")) << err;
  EXPECT_FALSE(fs::exists(dir / "run" / "checkpoint.tmp"));
  EXPECT_FALSE(fs::exists(dir / "run" / "checkpoint"));
}

TEST(CliTrain, BadFlagsAndDataLeaveNothingBehind) {
  TempDir dir;
  corpus(dir, "text");
  dir.write("arch.json", kArch);
  const std::string arch = (dir / "arch.json").string(), text = (dir / "text").string(), out = (dir / "run").string();
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  dir.write("bad.txt", "abc \xfe");
  dir.write("big-vocab.json", R"({"d_model": 32, "vocab_size": 100, "layers": [{"type": "ffn"}]})");
  const std::vector<Case> cases = {
      {{"--arch", arch, "--data", text, "--tokens", "0"}, "--tokens: must be positive, got 0"},
      {{"--arch", arch, "--data", text, "--tokens", "100", "--val-fraction", "1.5"}, "--val-fraction: must be between"},
      {{"--arch", arch, "--data", text, "--tokens", "100", "--device", "tpu"}, "--device: unknown device \"tpu\""},
      {{"--arch", arch, "--data", (dir / "bad.txt").string(), "--tokens", "100"}, "bad.txt: invalid UTF-8 at byte offset 4"},
      {{"--arch", (dir / "nope.json").string(), "--data", text, "--tokens", "100"}, "nope.json: no such file"},
      {{"--arch", (dir / "big-vocab.json").string(), "--data", text, "--tokens", "100"},
       "--arch: vocab_size 100 is smaller than the vocabulary (256)"},
      {{"--arch", arch, "--data", text, "--tokens", "100", "--seq-len", "100000"}, "fewer than one window"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"train", "--out", out, "--quiet"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, c.message)) << "want: " << c.message << "\ngot: " << r.err;
    EXPECT_FALSE(fs::exists(out)) << "run folder left behind for: " << c.message;
  }
  auto r = run_cli({"train", "--arch", arch, "--data", text, "--tokens", "100", "--out", out, "--resume"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "--resume: no checkpoint in")) << r.err;
}

}  // namespace
}  // namespace flashnas
