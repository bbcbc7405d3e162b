// Guards for hand-kept lists: every shipped ArchSpec and search config loads,
// and the every-operator test model holds every registered operator, so a
// file or list that drifts from the code fails here by name.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include "search/config.h"
#include "supernet/arch_spec.h"
#include "supernet/registry.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> files_under(const fs::path& dir, const std::string& ext) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ext) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `check` on every file; a file that throws fails the test with the
// file's name and the error's message.
void expect_each_loads(const std::vector<fs::path>& files, const std::function<void(const fs::path&)>& check) {
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    try {
      check(f);
    } catch (const std::exception& e) {
      ADD_FAILURE() << f.string() << " does not load: " << e.what();
    }
  }
}

TEST(ShippedFiles, EveryArchSpecLoads) {
  const auto files = files_under(fs::path(test::source_dir()) / "configs" / "arch", ".json");
  ASSERT_GE(files.size(), 6u);
  expect_each_loads(files, [](const fs::path& f) { EXPECT_FALSE(ArchSpec::load(f).layers.empty()); });
}

TEST(ShippedFiles, EverySearchConfigLoads) {
  std::vector<fs::path> files = files_under(fs::path(test::source_dir()) / "configs", ".toml");
  const auto results = files_under(fs::path(test::source_dir()) / "results", ".toml");
  files.insert(files.end(), results.begin(), results.end());
  ASSERT_GE(files.size(), 3u);
  expect_each_loads(files, [](const fs::path& f) { EXPECT_FALSE(SearchConfig::load(f).budgets.empty()); });
}

TEST(ShippedFiles, TheEveryOperatorModelHoldsEveryRegisteredOperator) {
  const ArchSpec a = ArchSpec::load(fs::path(test::source_dir()) / "configs" / "arch" / "every-op-tiny.json");
  std::set<std::string> in_model;
  for (const auto& l : a.layers) in_model.insert(l.type);
  for (const auto& name : op_names()) {
    EXPECT_TRUE(in_model.count(name)) << "operator \"" << name << "\" is registered but not in configs/arch/every-op-tiny.json";
  }
}

}  // namespace
}  // namespace flashnas
