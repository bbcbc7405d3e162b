// End-to-end tests of the flashnas binary whose output is checked as values:
// arch show/canon/ops. Help, usage and bad command lines are data:
// tests/cases/cli.toml.
#include <gtest/gtest.h>

#include "common/files.h"
#include "common/json_io.h"
#include "supernet/accounting.h"
#include "supernet/arch_spec.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::run_cli;
using test::TempDir;

const std::string kDemo = std::string(test::source_dir()) + "/configs/arch/demo-tiny.json";

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

TEST(Cli, ArchShowJsonMatchesAccounting) {
  auto r = run_cli({"arch", "show", kDemo, "--json", "--context", "512"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  const ArchSpec spec = ArchSpec::load(kDemo);
  const ModelAccount m = account(spec, 512, 4);
  EXPECT_EQ(j["params_total"], m.params_total);
  EXPECT_EQ(j["params_embedding"], m.params_embedding);
  EXPECT_EQ(j["params_head"], 0);  // demo-tiny ties its embeddings
  EXPECT_DOUBLE_EQ(j["flops_per_token_decode"].get<double>(), m.flops_per_token_decode);
  EXPECT_EQ(j["state_bytes"], m.state_bytes);
  EXPECT_EQ(j["hash"], spec.hash());
  ASSERT_EQ(j["layers"].size(), spec.layers.size());
  EXPECT_EQ(j["layers"][0]["type"], "attn");
  EXPECT_EQ(j["layers"][0]["index"], 0);
  EXPECT_EQ(j["layers"][1]["state_bytes"], 0);
}

TEST(Cli, ArchShowTable) {
  auto r = run_cli({"arch", "show", kDemo});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "demo-tiny")) << r.out;
  EXPECT_TRUE(contains(r.out, "heads=4 kv=2 dh=32")) << r.out;
  EXPECT_TRUE(contains(r.out, "total")) << r.out;
  EXPECT_TRUE(contains(r.out, "FLOPs/token, decode at context 2048")) << r.out;
}

TEST(Cli, CanonWritesCanonicalForm) {
  TempDir dir;
  auto r = run_cli({"arch", "canon", kDemo, "--out", (dir / "canon.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ArchSpec spec = ArchSpec::load(kDemo);
  EXPECT_TRUE(contains(r.err, "hash " + spec.hash())) << r.err;
  EXPECT_EQ(load_json_file(dir / "canon.json"), spec.to_json());

}

TEST(Cli, OpsListsRegistry) {
  auto r = run_cli({"arch", "ops", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  std::vector<std::string> names;
  for (const auto& k : j) names.push_back(k["name"]);
  EXPECT_NE(std::find(names.begin(), names.end(), "attn"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "ffn"), names.end());
}

}  // namespace
}  // namespace flashnas
