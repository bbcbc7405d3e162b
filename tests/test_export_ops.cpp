// Export of a study's winner made of the operators that joined the
// transformers code last (tests/test_hf_export.py checks the numbers in
// transformers itself).
#include <gtest/gtest.h>

#include <filesystem>

#include "common/files.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

// A winner made of the operators that joined the transformers code last
// (RWKV-7 and the gated short convolution) is exported with it, and the card
// says how to load it; generate loads the folder. (tests/test_hf_export.py
// loads every operator in transformers and checks the numbers.)
TEST(SearchCli, AModelOfRwkv7AndShortconvIsExportedForTransformers) {
  test::TempDir dir;
  const auto data = test::tiny_data(dir);
  const std::string toml = test::tiny_config(data.string(), "", "max_ms = 1000", R"(["rwkv7", "shortconv"])") +
                           "\n[space.ops.rwkv7]\nn_heads = 2\ndecay_rank = 8\na_rank = 8\ngate_rank = 8\n";
  dir.write("space.toml", toml);
  const std::string db = (dir / "study.db").string();
  test::synthetic_lut(test::parse_config(toml), db);
  const auto s = test::run_cli({"search", "--config", (dir / "space.toml").string(), "--db", db, "--study", "s", "--threads", "1"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const auto out = dir / "model";
  const auto e = test::run_cli({"export", "--db", db, "--study", "s", "--out", out.string(), "--no-measure"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.err.find("no transformers files"), std::string::npos) << e.err;
  for (const char* f : {"model.safetensors", "config.json", "modeling_flashnas.py", "configuration_flashnas.py", "tokenizer.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
  }
  EXPECT_NE(read_file(out / "README.md").find("AutoModelForCausalLM.from_pretrained"), std::string::npos);
  const std::string cfg = read_file(out / "config.json");
  EXPECT_NE(cfg.find("\"architectures\""), std::string::npos);
  const auto g = test::run_cli({"generate", "--model", out.string(), "--prompt", "ab", "--tokens", "4"});
  EXPECT_EQ(g.exit_code, 0) << g.err;
}

}  // namespace
}  // namespace flashnas
