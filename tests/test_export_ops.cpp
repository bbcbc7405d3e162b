// Export of a study's winner made of the operators that joined the
// transformers code last (tests/test_hf_export.py checks the numbers in
// transformers itself).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/files.h"
#include "export/export.h"
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


// The typed result the library hands the command line: latency.json's rows
// and the printed lines, for a budget measured here and one that was not.
TEST(ExportResult, LatencyJsonAndTextCarryTheSameNumbers) {
  ExportResult r;
  r.folder = "out/model";
  r.trial = 7;
  r.lut_device = {{"fingerprint", "cpu-x"}, {"threads", 2}};
  r.dtype = "float32";
  r.runtime = "eager";
  r.table_verdict = "limited";
  r.measured_by = {"abc123"};
  r.this_build = "def456";
  BudgetLatency a;
  a.budget.name = "agent-call";
  a.budget.workload = Workload::parse("batch=1,prompt=128,generate=32");
  a.budget.max_ms = 40;
  a.predicted_ms = 33;
  a.meets_budget = true;
  a.measured_ms = 30;
  a.measured_p10_ms = 29;
  a.measured_p90_ms = 31;
  BudgetLatency b = a;
  b.budget.name = "batch4";
  b.measured_ms.reset();
  b.why_not_measured = "--no-measure";
  r.budgets = {a, b};
  EXPECT_DOUBLE_EQ(a.error(), 0.1);
  EXPECT_TRUE(std::isnan(b.error()));
  const json j = r.latency_json();
  EXPECT_EQ(j["table"]["verdict"], "limited");
  EXPECT_EQ(j["table"]["measured_by"][0], "abc123");
  EXPECT_EQ(j["lut_device"]["fingerprint"], "cpu-x");
  EXPECT_DOUBLE_EQ(j["budgets"][0]["measured_ms"].get<double>(), 30);
  EXPECT_DOUBLE_EQ(j["budgets"][0]["measured_p90_ms"].get<double>(), 31);
  EXPECT_DOUBLE_EQ(j["budgets"][0]["error"].get<double>(), 0.1);
  EXPECT_EQ(j["budgets"][0]["budget"]["name"], "agent-call");
  EXPECT_TRUE(j["budgets"][1]["measured_ms"].is_null());
  EXPECT_EQ(j["budgets"][1]["why_not_measured"], "--no-measure");
  EXPECT_FALSE(j["budgets"][1].contains("error"));
  const std::string t = r.text();
  EXPECT_NE(t.find("agent-call     batch=1,prompt=128,generate=32"), std::string::npos) << t;
  EXPECT_NE(t.find("predicted    33.00 ms  measured    30.00 ms  (+10.0%)"), std::string::npos) << t;
  EXPECT_EQ(t.find("measured", t.find("batch4")), std::string::npos) << "batch4 was not measured: " << t;
  EXPECT_NE(t.find("exported to out/model\n"), std::string::npos) << t;
}

}  // namespace
}  // namespace flashnas
