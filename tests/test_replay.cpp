// Search algorithms replayed against a bench table (search/replay.h): the
// budget and the table's rows are respected, successive halving promotes
// only the best, a seed replays identically, and bad requests exit 2.
#include <gtest/gtest.h>

#include <set>

#include "common/files.h"
#include "search/fidelity.h"
#include "search/replay.h"
#include "report/replay_report.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

namespace fs = std::filesystem;
using test::run_cli;

// A 16-architecture table of the tiny space at rungs of 4 and 12 steps, made
// once; its folder goes with the test program's exit, like any test's.
const fs::path& table_csv() {
  static test::Study st;
  static const fs::path p = [] {
    const fs::path csv = st.dir / "t.csv";
    const auto r = run_cli({"bench-table", "--config", st.config, "--db", st.db, "--archs", "16", "--fidelities",
                            "256,768", "--threads", "1", "--csv", csv.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return csv;
  }();
  return p;
}

TEST(Replay, RandomSearchDrawsDistinctRowsWithinTheBudget) {
  const ReplayTable t = ReplayTable::load(table_csv());
  ASSERT_EQ(t.genomes.size(), 16u);
  ReplayOptions o;
  o.algorithm = "random";
  o.budget_tokens = 5 * 768 + 100;
  const ReplayRun r = replay(t, o);
  EXPECT_EQ(r.evaluated, 5) << "each run goes straight to the top rung";
  EXPECT_EQ(r.spent_tokens, 5 * 768);
  EXPECT_EQ(std::set<size_t>(r.rows.begin(), r.rows.end()).size(), r.rows.size());
  // The best is the best of the rows drawn, at the top rung.
  double best = INFINITY;
  for (const size_t row : r.rows) best = std::min(best, t.loss[row][1]);
  EXPECT_EQ(r.final_best, best);
  ASSERT_EQ(r.curve.size(), 5u);
  EXPECT_EQ(r.curve.back().best, best);
  EXPECT_TRUE(std::isnan(r.best_at(100)));
  EXPECT_EQ(r.best_at(r.spent_tokens), best);
  // The whole table fits a large budget; then the replay stops.
  o.budget_tokens = 1000000;
  EXPECT_EQ(replay(t, o).evaluated, 16);
}

TEST(Replay, SuccessiveHalvingPromotesOnlyTheBestAndASeedReplaysIdentically) {
  const ReplayTable t = ReplayTable::load(table_csv());
  for (const char* algo : {"random+asha", "evolution+asha", "evolution"}) {
    ReplayOptions o;
    o.algorithm = algo;
    o.seed = 7;
    o.budget_tokens = 6 * 768;
    const ReplayRun a = replay(t, o), b = replay(t, o);
    EXPECT_EQ(a.rows, b.rows) << algo;
    ASSERT_EQ(a.curve.size(), b.curve.size());
    for (size_t i = 0; i < a.curve.size(); ++i) EXPECT_EQ(a.curve[i].tokens, b.curve[i].tokens);
    EXPECT_LE(a.spent_tokens, o.budget_tokens) << algo;
    EXPECT_EQ(std::set<size_t>(a.rows.begin(), a.rows.end()).size(), a.rows.size()) << algo;
    o.seed = 8;
    EXPECT_NE(replay(t, o).rows, a.rows) << algo << ": another seed draws other rows";
  }
  ReplayOptions o;
  o.algorithm = "random+asha";
  o.budget_tokens = 6 * 768;
  const ReplayRun r = replay(t, o);
  EXPECT_GT(r.evaluated, 6) << "cheap first rungs evaluate more architectures";
  ASSERT_EQ(r.per_rung.size(), 2u);
  EXPECT_LE(r.per_rung[1], r.per_rung[0] / 3);
  EXPECT_GE(r.per_rung[1], 1);
  // Every promotion took a row among the best floor(n/3) of the n rows that had finished rung 0 then.
  std::vector<double> finished;
  int promotions = 0;
  for (const auto& [row, rung] : r.events) {
    if (rung == 0) {
      finished.push_back(t.loss[row][0]);
      continue;
    }
    ++promotions;
    std::vector<double> sorted = finished;
    std::sort(sorted.begin(), sorted.end());
    const size_t k = sorted.size() / 3;
    ASSERT_GE(k, 1u);
    EXPECT_LE(t.loss[row][0], sorted[k - 1]) << "promoted a row outside the top third";
  }
  EXPECT_EQ(promotions, r.per_rung[1]);
}

TEST(Replay, SummaryComparesEveryAlgorithmWithRandomSearch) {
  const ReplayTable t = ReplayTable::load(table_csv());
  ReplayOptions common;
  common.budget_tokens = 4 * 768;
  // Every replay reports its progress once, in order; each equals the replay of its algorithm and seed alone.
  std::vector<std::pair<int64_t, int64_t>> seen;
  const auto runs = replay_all(t, {"random", "random+asha"}, 9, 0, common,
                               [&](int64_t done, int64_t total, const ReplayRun&) { seen.emplace_back(done, total); });
  ASSERT_EQ(seen.size(), 18u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], std::make_pair(int64_t(i + 1), int64_t(18)));
  ReplayOptions alone = common;
  alone.algorithm = "random+asha";
  alone.seed = 4;
  EXPECT_EQ(replay(t, alone).rows, runs[1][4].rows);
  const ReplaySummary s = summarize_replays(runs, {"call"}, 10);
  ASSERT_EQ(s.curves.size(), 2u);
  std::vector<double> finals;
  for (const auto& r : runs[0]) finals.push_back(r.final_best);
  std::sort(finals.begin(), finals.end());
  EXPECT_EQ(s.target, finals[4]) << "random search's final median best";
  EXPECT_EQ(s.curves[0].tokens_to_target, s.curves[0].tokens.back()) << "random reaches its own target at the end";
  EXPECT_EQ(s.curves[0].tokens.size(), 10u);
  EXPECT_NE(s.csv().find("random+asha,"), std::string::npos);
  EXPECT_NE(s.svg().find("<polyline"), std::string::npos);
  const json j = s.to_json();
  EXPECT_EQ(j["algorithms"][1]["algorithm"], "random+asha");
}

TEST(Replay, BadRequestsExitTwoAndWriteNothing) {
  const fs::path csv = table_csv();
  test::TempDir out;
  auto check = [&](std::vector<std::string> extra, const std::string& want) {
    std::vector<std::string> args = {"bench-search", "--table", csv.string(), "--seeds", "2",
                                      "--csv", (out / "c.csv").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("replays]"), std::string::npos) << "refused only after replaying: " << r.err;
    EXPECT_TRUE(out.entries().empty()) << want;
  };
  check({"--algorithms", "random,annealing"}, "--algorithm: \"annealing\" is not one of random, evolution");
  check({"--algorithms", "evolution"}, "--algorithms: must include \"random\"");
  check({"--algorithms", "random,guided,simplex"}, "--algorithm: \"simplex\" is not one of");
  check({"--budget-tokens", "100"}, "--budget-tokens: 100 is less than one run");
  test::TempDir lone;
  fs::copy_file(csv, lone / "t.csv");
  auto r = run_cli({"bench-search", "--table", (lone / "t.csv").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("t.csv.json is missing"), std::string::npos) << r.err;
  lone.write("bad.csv", "trial,genome\n1,x\n");
  r = run_cli({"bench-search", "--table", (lone / "bad.csv").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.csv:1: no loss_<tokens> columns"), std::string::npos) << r.err;
  // A good request writes the curves.
  r = run_cli({"bench-search", "--table", csv.string(), "--seeds", "3", "--budget-tokens", "3072", "--csv",
               (out / "c.csv").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["algorithms"].size(), 6u) << "random, evolution, guided, each with and without halving";
  EXPECT_TRUE(fs::exists(out / "c.csv"));
}

}  // namespace
}  // namespace flashnas
