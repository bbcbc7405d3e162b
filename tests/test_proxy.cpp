// `flashnas proxy`: rank statistics, bad input, a tiny experiment and its resume.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/db.h"
#include "search/proxy.h"
#include "test_util.h"
#include "tests/search_fixture.h"
#include "train/corpus.h"
#include "train/token_file.h"

namespace flashnas {
namespace {

using test::run_cli;
using test::TempDir;

TEST(ProxyStats, KendallTopKAndBootstrap) {
  EXPECT_NEAR(kendall_tau({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0, 1e-12);
  EXPECT_NEAR(kendall_tau({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  // tau-b with a tie in the first ranking: 5 concordant pairs of 6, one tied:
  // 5 / sqrt(5 * 6).
  EXPECT_NEAR(kendall_tau({1, 2, 2, 3}, {1, 2, 3, 4}), 5.0 / std::sqrt(30.0), 1e-12);
  // One discordant pair of 6 (3 and 4 swapped): (5 - 1) / 6.
  EXPECT_NEAR(kendall_tau({1, 2, 3, 4}, {1, 2, 4, 3}), 4.0 / 6.0, 1e-12);
  EXPECT_TRUE(std::isnan(kendall_tau({1}, {1})));
  // The 2 lowest of a are items 0 and 1; of b, items 0 and 2: half agree.
  EXPECT_DOUBLE_EQ(top_k_overlap({1, 2, 3, 4}, {1, 5, 2, 6}, 2), 0.5);
  EXPECT_DOUBLE_EQ(top_k_overlap({1, 2, 3, 4}, {1, 2, 3, 4}, 1), 1.0);
  // The bootstrap: a perfect ranking stays perfect in every resample; the
  // interval of a noisy one contains its value, and a fixed seed repeats.
  const auto kendall = [](const std::vector<double>& a, const std::vector<double>& b) { return kendall_tau(a, b); };
  const RankAgreement perfect = bootstrap({1, 2, 3, 4, 5}, {2, 4, 6, 8, 10}, kendall, 1);
  EXPECT_DOUBLE_EQ(perfect.lo, 1.0);
  EXPECT_DOUBLE_EQ(perfect.hi, 1.0);
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> a, b;
  for (int i = 0; i < 30; ++i) {
    a.push_back(i);
    b.push_back(i + 8 * noise(rng));
  }
  const RankAgreement r = bootstrap(a, b, kendall, 7), again = bootstrap(a, b, kendall, 7);
  EXPECT_LT(r.lo, r.value);
  EXPECT_GT(r.hi, r.value);
  EXPECT_GT(r.value, 0.3);
  EXPECT_LT(r.value, 0.95);
  EXPECT_DOUBLE_EQ(r.lo, again.lo);
  EXPECT_DOUBLE_EQ(r.hi, again.hi);
}

struct Experiment {
  TempDir dir;
  std::string config, db;
  Experiment() {
    const auto data = test::tiny_token_file(dir);
    config = (dir / "space.toml").string();
    db = (dir / "proxy.db").string();
    // Two mixers: a space small enough that asking for more architectures than it holds is found quickly.
    dir.write("space.toml", test::tiny_config(data.string(), "", "max_ms = 1000", R"(["swa", "mamba2"])"));
  }
  std::vector<std::string> args(int archs, const std::string& name = "p") const {
    return {"proxy", "--config", config, "--db", db, "--archs", std::to_string(archs), "--short", "256",
            "--long", "768", "--name", name, "--json"};
  }
};

TEST(ProxyCli, BadRequestsNameTheFlagAndWriteNothing) {
  Experiment e;
  const auto before = e.dir.entries();
  auto check = [&](std::vector<std::string> args, const std::string& want) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(e.dir.entries(), before) << "nothing written for: " << want;
  };
  auto a = e.args(4);
  a[8] = "768";  // --short equal to --long
  check(a, "--long: must be more tokens than --short (768)");
  check(e.args(2), "--archs: must be >= 4");
  check(e.args(100000), "distinct architectures that meet its constraints; ask for at most that many");
  check(e.args(4, "../escape"), "--name \"../escape\": must be 1 to 64 letters");
  check(e.args(4, ""), "--name \"\": must be");
}

TEST(ProxyCli, TrainsBothBudgetsReportsAndResumes) {
  Experiment e;
  auto r = run_cli(e.args(4));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["n"], 4);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["top_k"], 1);
  ASSERT_EQ(j["rows"].size(), 4u);
  for (const auto& row : j["rows"]) {
    EXPECT_GT(row["short_loss"].get<double>(), row["long_loss"].get<double>() - 0.5) << row.dump();
    EXPECT_GT(row["long_loss"].get<double>(), 0);
  }
  const double rho = j["spearman"]["value"].get<double>();
  EXPECT_GE(rho, -1.0);
  EXPECT_LE(rho, 1.0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 8) << "one line per run:\n" << r.err;
  // A rerun trains nothing and reports the same.
  r = run_cli(e.args(4));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(json::parse(r.out)["rows"], j["rows"]);
  // One more architecture: only its two runs are trained.
  r = run_cli(e.args(5));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
  Db db(e.db, false);
  Stmt q(db, "SELECT COUNT(*) FROM proxy_runs WHERE status = 'done'");
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.int64(0), 10);
  Stmt reports(db, "SELECT COUNT(*) FROM proxy_reports");
  ASSERT_TRUE(reports.step());
  EXPECT_EQ(reports.int64(0), 3);
}

}  // namespace
}  // namespace flashnas

namespace flashnas {
namespace {

TEST(ProxyCli, TheFrontierQuotesTheProxyReportOfItsSpaceAndRecipe) {
  test::Study st;
  auto r = test::run_cli({"search", "--config", st.config, "--db", st.db, "--study", "s", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = test::run_cli({"frontier", "--db", st.db, "--study", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(json::parse(r.out).contains("proxy")) << "no report yet";
  r = test::run_cli({"proxy", "--config", st.config, "--db", st.db, "--archs", "4", "--short", "256", "--long", "512",
                     "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json p = json::parse(r.out);
  r = test::run_cli({"frontier", "--db", st.db, "--study", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json f = json::parse(r.out);
  ASSERT_TRUE(f.contains("proxy")) << r.out;
  EXPECT_EQ(f["proxy"]["spearman"], p["spearman"]);
  EXPECT_EQ(f["proxy"]["short_tokens"], 256);
  EXPECT_EQ(f["proxy"]["long_tokens"], 512);
  r = test::run_cli({"frontier", "--db", st.db, "--study", "s"});
  EXPECT_NE(r.out.find("proxy fidelity of this space and recipe: Spearman rho"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace flashnas
