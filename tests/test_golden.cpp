// Every registered operator against golden values from its published
// reference implementation (flash-linear-attention's naive recurrences,
// mamba_ssm's ssd_minimal, transformers' LFM2 short convolution and Llama MLP),
// computed in float64 by scripts/golden_refs.py and committed as
// tests/golden/<operator>.safetensors. Those references share no code with
// flashnas, unlike the step recurrences of tests/test_registry_ops.cpp.
//
// flashnas runs its chunked forms (chunk 8, on lengths that are not multiples
// of it except for SSD's reference, which needs them) through each registry
// entry's OpTesting::golden, on the file's inputs in float64 and in float32.
// Tolerances, relative to the reference output's largest magnitude: float64
// 1e-10 (reassociated sums agree to ~1e-14), float32 the entry's tol_f32.
#include <gtest/gtest.h>

#include <filesystem>

#include "supernet/registry.h"
#include "tests/test_util.h"
#include "train/safetensors.h"

namespace flashnas {
namespace {

std::filesystem::path golden_file(const std::string& op) {
  return std::filesystem::path(test::source_dir()) / "tests" / "golden" / (op + ".safetensors");
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, ChunkedFormsMatchThePublishedReference) {
  const OpKind& k = find_op_kind(GetParam(), "test");
  const auto path = golden_file(k.name);
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run scripts/golden_refs.py";
  ASSERT_TRUE(k.testing.golden) << k.name << " declares no OpTesting::golden";
  std::map<std::string, std::string> meta;
  const auto file = load_safetensors(path, &meta);
  std::cout << k.name << ": " << meta.at("reference") << "\n";
  for (auto dt : {torch::kFloat64, torch::kFloat32}) {
    OpTesting::Tensors in;
    for (const auto& [name, t] : file) in[name] = t.to(dt);
    const OpTesting::Tensors out = k.testing.golden(in, meta);
    ASSERT_FALSE(out.empty());
    for (const auto& [name, got] : out) {
      ASSERT_TRUE(file.contains(name)) << k.name << ": the golden file has no " << name;
      const torch::Tensor& want = file.at(name);
      ASSERT_EQ(got.sizes(), want.sizes()) << k.name << " " << name;
      const double rel = test::max_rel_diff(got.to(torch::kFloat64), want);
      std::cout << "  " << (dt == torch::kFloat64 ? "float64" : "float32") << " " << name
                << ": max relative difference " << rel << "\n";
      EXPECT_LE(rel, dt == torch::kFloat64 ? 1e-10 : k.testing.tol_f32) << k.name << " " << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, Golden, ::testing::ValuesIn(op_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace flashnas
