// flashnas compare: baselines sized on a fixed (synthetic) latency table,
// the Nemotron-Flash layer pattern, one recorded recipe for every
// contender, the learning-rate grid, the verdict, a killed comparison that
// resumes to the same numbers, both backends, and bad input refused by name
// with nothing written.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "common/db.h"
#include "common/error.h"
#include "profiler/lut.h"
#include "profiler/lut_table.h"
#include "profiler/predict.h"
#include "search/baselines.h"
#include "compare/compare_report.h"
#include "compare/compare_store.h"
#include "search/pricer.h"
#include "study/study_store.h"
#include "tests/pg_server.h"
#include "tests/search_fixture.h"

namespace flashnas {
namespace {

using test::CliResult;
using test::run_cli;
using test::TempDir;

// The tiny search space with attention too (the Llama and Nemotron-Flash
// baselines need it), a budget that limits depth, and its synthetic table.
struct CompareStudy {
  TempDir dir;
  std::string config, db, artifacts;
  explicit CompareStudy(const std::string& db_url = "", const std::string& budget = "max_ms = 3") {
    const auto data = test::tiny_data(dir);
    std::string toml = test::tiny_config(data.string(), "", budget, R"(["attn", "swa", "mamba2", "deltanet"])");
    test::replace_once(toml, "[space.ops.swa]", "[space.ops.attn]\nn_heads = \"d_model / 16\"\nn_kv_heads = 1\n[space.ops.swa]");
    config = (dir / "space.toml").string();
    dir.write("space.toml", toml);
    db = db_url.empty() ? (dir / "study.db").string() : db_url;
    if (!db_url.empty()) artifacts = (dir / "runs").string();
    test::synthetic_lut(test::parse_config(toml), db);
  }
  std::vector<std::string> with_db(std::vector<std::string> a) const {
    a.insert(a.end(), {"--db", db});
    if (!artifacts.empty()) a.insert(a.end(), {"--artifacts", artifacts});
    return a;
  }
  void search() const {
    const CliResult r = run_cli(with_db({"search", "--config", config, "--study", "s", "--threads", "1"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // A quick comparison: short runs, one thread, measured here.
  std::vector<std::string> compare_args(const std::string& name, std::vector<std::string> extra = {},
                                        const std::string& seeds = "2") const {
    std::vector<std::string> a = with_db({"compare", "--study", "s", "--name", name, "--tokens", "512", "--lr-tokens",
                                          "256", "--seeds", seeds, "--threads", "1", "--aspect", "8,32", "--rounds", "2",
                                          "--min-seconds", "0.001", "--measure-anywhere"});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

SearchConfig tiny_space_config(const std::string& budget) {
  std::string toml = test::tiny_config("unused.tokens", "", budget, R"(["attn", "swa", "mamba2", "deltanet"])");
  test::replace_once(toml, "[space.ops.swa]", "[space.ops.attn]\nn_heads = \"d_model / 16\"\nn_kv_heads = 1\n[space.ops.swa]");
  return test::parse_config(toml);
}

// The tiny space's synthetic table, and the latency it predicts for budget b.
struct FixedTable {
  TempDir dir;
  SearchConfig cfg;
  std::unique_ptr<LutTable> table;
  explicit FixedTable(const std::string& budget) : cfg(tiny_space_config(budget)) {
    test::synthetic_lut(cfg, dir / "lut.db");
    LutStore lut(dir / "lut.db", Access::read_only);
    table = std::make_unique<LutTable>(LutTable::load(lut, lut.find_device(""), cfg.dtype, cfg.runtime));
  }
  double ms(const ArchSpec& a, size_t b = 0) const { return predict(a, cfg.budgets[b].workload, *table).total_ms; }
};

TEST(Baselines, NemotronFlashPatternIsThePublishedOne) {
  // Nemotron-Flash-1B and -3B (24 and 36 operators): B1 = D F M2 F, B2 = A F M2 F.
  auto text = [](int n) {
    std::string s;
    for (const auto& t : family_layers("nemotron-flash", n, true)) {
      s += t == "deltanet" ? "D" : t == "mamba2" ? "M2" : t == "attn" ? "A" : "F";
      s += ",";
    }
    return s;
  };
  EXPECT_EQ(text(6), "D,F,M2,F,A,F,M2,F,D,F,M2,F,A,F,M2,F,D,F,M2,F,D,F,M2,F,");
  EXPECT_EQ(text(9),
            "D,F,M2,F,A,F,M2,F,D,F,M2,F,A,F,M2,F,D,F,M2,F,A,F,M2,F,D,F,M2,F,D,F,M2,F,D,F,M2,F,");
  EXPECT_EQ(text(1), "D,F,M2,F,");
  EXPECT_EQ(family_layers("llama", 2, true), (std::vector<std::string>{"attn", "ffn", "attn", "ffn"}));
  EXPECT_EQ(family_layers("mamba2-only", 2, false), (std::vector<std::string>{"mamba2", "mamba2"}));
}

TEST(Baselines, SizingMeetsTheBudgetOnAFixedTable) {
  const FixedTable t("max_ms = 3");
  const SearchConfig& cfg = t.cfg;
  auto price = [&](const ArchSpec& a) { return t.ms(a); };
  SizingOptions so;
  so.aspect_min = 8;
  so.aspect_max = 32;
  std::vector<std::string> skipped;
  const auto cs = size_baselines(cfg.space, cfg.budgets[0], price, so, &skipped);
  std::set<std::string> labels;
  for (const auto& c : cs) {
    labels.insert(c.label);
    ASSERT_TRUE(c.predicted_ms);
    // Priced on the same table, within the budget...
    EXPECT_NEAR(*c.predicted_ms, price(c.arch), 1e-12) << c.label;
    EXPECT_LE(*c.predicted_ms, 3.0) << c.label;
    EXPECT_EQ(c.kind, "baseline");
    // ...and using it: at least 85% of the slowest size of its family
    // (any width, any depth) within the budget.
    const std::string family = c.label.rfind("llama", 0) == 0 ? "llama" : c.label;
    double slowest = 0;
    for (const int64_t w : cfg.space.widths) {
      for (int n = 1; n < 64; ++n) {
        const double ms = price(cfg.space.build(family_layers(family, n, true), w, family));
        if (ms > 3.0) break;
        slowest = std::max(slowest, ms);
      }
    }
    EXPECT_GE(*c.predicted_ms, 0.85 * slowest) << c.label;
    // Deep-thin is the deepest at its width: one more block breaks the budget.
    if (c.label == "llama-deep-thin") {
      const int n = mixer_layers(c.arch);
      const ArchSpec deeper = cfg.space.build(family_layers("llama", n + 1, true), c.arch.d_model, "deeper");
      EXPECT_GT(price(deeper), 3.0) << c.label;
    }
  }
  for (const char* want : {"llama", "swa-only", "mamba2-only", "deltanet-only", "nemotron-flash"}) {
    EXPECT_TRUE(labels.count(want)) << want;
  }
  // The deep-thin variant is at the narrowest width, the wide-shallow at the widest.
  for (const auto& c : cs) {
    if (c.label == "llama-deep-thin") {
      EXPECT_EQ(c.arch.d_model, 16);
    }
    if (c.label == "llama-wide-shallow") {
      EXPECT_EQ(c.arch.d_model, 32);
    }
  }
  // Distinct architectures only.
  std::set<std::string> hashes;
  for (const auto& c : cs) EXPECT_TRUE(hashes.insert(c.arch.hash()).second) << c.label;
}

// A study's trials meet every one of its budgets, so the baselines of one
// budget must meet the others too: a second, tighter limit on a longer
// workload shrinks the sizes, and none breaks it.
TEST(Baselines, BaselinesOfOneBudgetMeetTheStudysOtherBudgets) {
  const FixedTable t("max_ms = 3\n\n[[budgets]]\nname = \"long\"\nworkload = \"batch=1,prompt=16,generate=24\"\nmax_ms = 3");
  const SearchConfig& cfg = t.cfg;
  ASSERT_EQ(cfg.budgets.size(), size_t(2));
  auto price0 = [&](const ArchSpec& a) { return t.ms(a, 0); };
  auto meets_long = [&](const ArchSpec& a) { return cfg.budgets[1].met(t.ms(a, 1)); };
  const auto free = size_baselines(cfg.space, cfg.budgets[0], price0, {}, nullptr);
  std::vector<std::string> skipped;
  const auto bound = size_baselines(cfg.space, cfg.budgets[0], price0, {}, &skipped, meets_long);
  size_t broke = 0, shrank = 0;
  for (const auto& c : free) broke += !meets_long(c.arch);
  ASSERT_GT(broke, size_t(0)) << "the second budget must bind some family for this test to mean anything";
  std::map<std::string, double> free_ms;
  for (const auto& c : free) free_ms[c.label] = *c.predicted_ms;
  for (const auto& c : bound) {
    EXPECT_TRUE(meets_long(c.arch)) << c.label << " " << c.description;
    EXPECT_LE(*c.predicted_ms, 3.0) << c.label;
    if (free_ms.count(c.label) && *c.predicted_ms < free_ms[c.label]) ++shrank;
  }
  EXPECT_GT(shrank, size_t(0));
  // The seeds the search starts from meet both budgets as well.
  const auto seeds = baseline_seeds(cfg.space, cfg.budgets, [&](const ArchSpec& a, size_t b) { return t.ms(a, b); });
  ASSERT_FALSE(seeds.empty());
  for (const auto& text : seeds) {
    const ArchSpec a = cfg.space.decode(cfg.space.parse_genome(text, "seed"));
    EXPECT_TRUE(cfg.budgets[0].met(t.ms(a, 0)) && cfg.budgets[1].met(t.ms(a, 1))) << text;
  }
}

TEST(Baselines, ABudgetNoBaselineMeetsIsRefusedByName) {
  const FixedTable t("max_ms = 0.05");
  const SearchConfig& cfg = t.cfg;
  auto price = [&](const ArchSpec& a) { return t.ms(a); };
  const std::string msg = test::input_error_of([&] { size_baselines(cfg.space, cfg.budgets[0], price, {}, nullptr); });
  EXPECT_NE(msg.find("budget \"call\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("no baseline meets it"), std::string::npos) << msg;
}

TEST(Baselines, GenomesOfTheSpaceDecodeToTheSameArchitecture) {
  const SearchConfig cfg = tiny_space_config("max_ms = 3");
  const SearchSpace& sp = cfg.space;  // staged: 3 stages of 1..2 blocks, at most 8 operators
  auto units = [&](const std::string& family, int n) {
    std::vector<StageGene> u;
    const int r = family == "nemotron-flash" ? 1 : 0;  // ratios 0:1, 1:1, ...
    EXPECT_EQ(sp.ratios[size_t(r)].str(), r == 0 ? "0:1" : "1:1");
    for (int i = 0; i < n; ++i) {
      if (family == "nemotron-flash") {
        u.push_back({i % 2 == 1 && i < 2 * (n / 3) ? "attn" : "deltanet", "mamba2", r, 1, 1});
      } else {
        u.push_back({"mamba2", "mamba2", r, 1, 1});
      }
    }
    return u;
  };
  // Three Mamba2+FFN blocks: one per stage; four: 2+1+1.
  for (int n : {3, 4}) {
    const auto g = genome_of(sp, units("mamba2-only", n), 32);
    ASSERT_TRUE(g) << n;
    EXPECT_EQ(sp.decode(*g, 32).hash(), sp.build(family_layers("mamba2-only", n, true), 32, "x").hash()) << n;
  }
  EXPECT_EQ(sp.genome_text(*genome_of(sp, units("mamba2-only", 4), 32)), "d=32 2x[mamba2 f1] 1x[mamba2 f1] 1x[mamba2 f1]");
  // Five blocks are ten operators, over the cap of 8; two cannot fill three stages.
  EXPECT_FALSE(genome_of(sp, units("mamba2-only", 5), 32));
  EXPECT_FALSE(genome_of(sp, units("mamba2-only", 2), 32));
  // The seeds: every budget's baselines the space holds, decoding to the sized architecture.
  const FixedTable t("max_ms = 3");
  auto price = [&](const ArchSpec& a, size_t b) { return t.ms(a, b); };
  std::vector<std::string> outside;
  const auto seeds = baseline_seeds(sp, cfg.budgets, price, &outside);
  ASSERT_FALSE(seeds.empty());
  for (const auto& text : seeds) {
    const Genome g = sp.parse_genome(text, "seed");
    EXPECT_LE(price(sp.decode(g), 0), 3.0) << text;
    EXPECT_LE(sp.operators(g), sp.max_operators) << text;
  }
  // Every baseline of the budget is either seeded or named as outside the
  // space with the reason; none is dropped without a word.
  ASSERT_FALSE(outside.empty());
  const auto cs = size_baselines(sp, cfg.budgets[0], [&](const ArchSpec& a) { return price(a, 0); }, {}, nullptr);
  size_t named = 0;
  for (const auto& c : cs) {
    const std::string line = cfg.budgets[0].name + ": " + c.label + " " + c.description + " (";
    const bool out = std::any_of(outside.begin(), outside.end(), [&](const std::string& o) { return o.rfind(line, 0) == 0; });
    named += out;
    const auto g = genome_of(sp, c.units, c.arch.d_model);
    const bool seeded = g && std::find(seeds.begin(), seeds.end(), sp.genome_text(*g)) != seeds.end();
    EXPECT_NE(out, seeded) << c.label << " " << c.description;
    if (out && c.arch.layers.size() > size_t(sp.max_operators)) {
      const std::string why = std::to_string(c.arch.layers.size()) + " operators > max_operators 8";
      EXPECT_TRUE(std::any_of(outside.begin(), outside.end(),
                              [&](const std::string& o) { return o.rfind(line, 0) == 0 && o.find(why) != std::string::npos; }))
          << c.label;
    }
  }
  EXPECT_EQ(named, outside.size());
}

json report_of(const CompareStudy& st, const std::string& name) {
  const CliResult r = run_cli(st.with_db({"compare", "--study", "s", "--name", name, "--report", "--json"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

// Every contender's final runs share one recipe but for seed and learning
// rate; seeds are the same set for each.
void expect_one_recipe(const std::string& db) {
  Db d(db, Access::read_only);
  Stmt q(d, "SELECT recipe, seed FROM compare_runs WHERE phase = 'final' AND status = 'done'");
  json first;
  std::map<int64_t, int> seeds;
  int n = 0;
  while (q.step()) {
    json r = json::parse(q.text(0));
    EXPECT_EQ(r.at("seed").get<int64_t>(), q.int64(1));
    r.erase("seed");
    r.erase("lr");
    if (first.is_null()) first = r;
    EXPECT_EQ(r, first);
    ++seeds[q.int64(1)];
    ++n;
  }
  EXPECT_GT(n, 4);
  ASSERT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds.begin()->second, seeds.rbegin()->second);
}

class Compare : public test::BackendTest {};

TEST_P(Compare, RetrainsPicksAndBaselinesUnderOneRecipeAndMeasuresThem) {
  if (IsSkipped()) return;
  CompareStudy st(GetParam() == Dialect::postgresql ? target_ : "");
  st.search();
  const std::string svg = (st.dir / "cmp.svg").string();
  auto args = st.compare_args("c", {"--lr", "0.003", "--svg", svg});
  const CliResult r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("verdict:"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << r.err;
  const json rep = report_of(st, "c");
  EXPECT_TRUE(rep["complete"].get<bool>());
  EXPECT_TRUE(rep["measured"].get<bool>());
  ASSERT_EQ(rep["budgets"].size(), 1u);
  std::set<std::string> labels;
  for (const auto& c : rep["budgets"][0]["contenders"]) {
    labels.insert(c["label"].get<std::string>());
    EXPECT_EQ(c["bpb"].size(), 2u) << c.dump();
    EXPECT_EQ(c["seeds"], json::array({0, 1})) << c.dump();
    EXPECT_GT(c["measured_ms"].get<double>(), 0) << c.dump();
    EXPECT_EQ(c["measurement_rounds"].get<int>(), 2);
    EXPECT_DOUBLE_EQ(c["lr"].get<double>(), 0.003);
    EXPECT_EQ(c["recipe"]["tokens"].get<int64_t>(), 512);
    EXPECT_EQ(c["recipe"]["schedule"], "cosine");
    // The seeds differ (the initialisation), so the spread is not zero.
    EXPECT_NE(c["bpb"][0].get<double>(), c["bpb"][1].get<double>());
  }
  for (const char* want : {"pick-best", "llama", "mamba2-only", "nemotron-flash"}) EXPECT_TRUE(labels.count(want)) << want;
  // The pick is judged against every other contender within the budget.
  const auto& b = rep["budgets"][0];
  EXPECT_EQ(b["versus"].size() + b["over_budget"].size(), b["contenders"].size() - 1);
  // Only the baselines count for the verdict; the study's other picks are
  // shown against the best one, not judged.
  bool all_baselines_beaten = true, any_baseline = false;
  for (const auto& v : b["versus"]) {
    const std::string out = v["outcome"].get<std::string>();
    const double d = v["delta_bpb"].get<double>(), s = v["spread"].get<double>();
    EXPECT_EQ(out, d > 2 * s ? "wins" : d > 0 ? "lower" : "not lower") << v.dump();
    const bool is_pick = v["label"].get<std::string>().rfind("pick-", 0) == 0;
    EXPECT_EQ(v["judged"].get<bool>(), !is_pick) << v.dump();
    if (!is_pick) all_baselines_beaten = all_baselines_beaten && out == "wins", any_baseline = true;
  }
  // With no baseline within the budget there is nothing to win against.
  EXPECT_EQ(b["pick_wins"].get<bool>(), any_baseline && all_baselines_beaten) << b.dump();
  expect_one_recipe(st.db);
  const std::string plot = test::slurp(svg);
  EXPECT_NE(plot.find("<svg"), std::string::npos);
  EXPECT_NE(plot.find("pick-best"), std::string::npos);
  EXPECT_NE(plot.find("measured latency (ms)"), std::string::npos);
  // Running it again trains nothing more and reports the same numbers.
  const CliResult again = run_cli(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("compare: final run"), std::string::npos) << again.err;
  json rep2 = report_of(st, "c");
  EXPECT_EQ(rep2["budgets"], rep["budgets"]);
  // Every measurement carries the machine-speed probe read around it. The
  // synthetic table has no probe reference, so the latencies are judged as
  // measured, and the report says so.
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_speed WHERE probe_us > 0"),
            test::scalar(st.db, "SELECT COUNT(*) FROM compare_latency"));
  EXPECT_GT(test::scalar(st.db, "SELECT COUNT(*) FROM compare_latency"), 0);
  EXPECT_FALSE(rep["normalised"].get<bool>());
  EXPECT_NE(r.out.find("latency as measured"), std::string::npos) << r.out;
  // With a reference at half the probe's readings (the machine ran at half
  // the table's speed), every latency the verdict uses is halved.
  {
    Db d(st.db, Access::read_write);
    d.exec("UPDATE compare_speed SET reference_us = probe_us / 2");
  }
  const json half = report_of(st, "c");
  EXPECT_TRUE(half["normalised"].get<bool>());
  EXPECT_DOUBLE_EQ(half["speed_ratio_min"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(half["speed_ratio_max"].get<double>(), 2.0);
  for (const auto& c : half["budgets"][0]["contenders"]) {
    const double measured = c["measured_ms"].get<double>();
    EXPECT_DOUBLE_EQ(c["measured_at_table_speed_ms"].get<double>(), measured / 2) << c.dump();
    EXPECT_DOUBLE_EQ(c["latency_ms"].get<double>(), measured / 2) << c.dump();
    EXPECT_DOUBLE_EQ(c["speed_ratio"].get<double>(), 2.0) << c.dump();
  }
  EXPECT_NE(half["budgets"][0]["verdict"].get<std::string>().find("at the table's machine speed"), std::string::npos)
      << half["budgets"][0]["verdict"];
  const CliResult text = run_cli(st.with_db({"compare", "--study", "s", "--name", "c", "--report"}));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("probe 2.00x..2.00x the latency table's reference"), std::string::npos) << text.out;
}

INSTANTIATE_TEST_SUITE_P(Backends, Compare, ::testing::Values(Dialect::sqlite, Dialect::postgresql),
                         [](const auto& info) { return info.param == Dialect::sqlite ? "SQLite" : "PostgreSQL"; });

TEST(CompareRuns, TheLearningRateIsPickedPerContenderFromTheGrid) {
  CompareStudy st;
  st.search();
  const CliResult r = run_cli(st.compare_args("g", {"--lr-grid", "0.001,0.01", "--no-measure"}, "1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rep = report_of(st, "g");
  EXPECT_FALSE(rep["measured"].get<bool>());
  EXPECT_NE(rep["budgets"][0]["verdict"].get<std::string>().find("predicted"), std::string::npos);
  for (const auto& c : rep["budgets"][0]["contenders"]) {
    // Two rates on the grid: one of them wins, and it is an edge, so one
    // more beyond it is tried (a factor 10 further); a winner still on the
    // edge has had both extensions.
    ASSERT_GE(c["lr_grid"].size(), 3u) << c.dump();
    if (c["lr_at_edge"].get<bool>()) {
      EXPECT_EQ(c["lr_grid"].size(), 4u) << c.dump();
    }
    double best = INFINITY, lr = 0;
    for (const auto& g : c["lr_grid"]) {
      if (g["val_loss"].get<double>() < best) {
        best = g["val_loss"].get<double>();
        lr = g["lr"].get<double>();
      }
    }
    EXPECT_DOUBLE_EQ(c["lr"].get<double>(), lr) << c.dump();
    EXPECT_TRUE(c["measured_ms"].is_null());
  }
  // Grid runs are short (--lr-tokens), final runs long (--tokens).
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs WHERE phase = 'lr' AND tokens <> 256"), 0);
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs WHERE phase = 'final' AND tokens <> 512"), 0);
  // Another comparison of the same runs trains nothing: every result is
  // taken from "g", and the report is the same.
  const CliResult again = run_cli(st.compare_args("g2", {"--lr-grid", "0.001,0.01", "--no-measure"}, "1"));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("its result reused"), std::string::npos) << again.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs r JOIN comparisons c ON c.id = r.comparison_id WHERE"
                                " c.name = 'g2' AND r.phase <> 'measure' AND (r.reason IS NULL OR r.reason NOT LIKE 'reused%')"),
            0);
  EXPECT_EQ(report_of(st, "g2")["budgets"][0]["contenders"], rep["budgets"][0]["contenders"]);
}

TEST(CompareRuns, AKilledComparisonResumesToTheSameNumbers) {
  CompareStudy st;
  st.search();
  const CliResult whole = run_cli(st.compare_args("whole", {"--lr", "0.003", "--no-measure"}));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  // Killed (SIGKILL) in the middle of its third run, then run again.
  // (--no-reuse: the same runs of "whole" would otherwise be taken as they are.)
  const CliResult killed = run_cli(st.compare_args("killed", {"--lr", "0.003", "--no-measure", "--no-reuse"}),
                                   {"env", "FLASHNAS_FAULT=kill-compare-step:20"});
  EXPECT_NE(killed.exit_code, 0);
  EXPECT_GT(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs WHERE status = 'running'"), 0);
  const CliResult resumed = run_cli(st.compare_args("killed", {"--lr", "0.003", "--no-measure", "--no-reuse"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("continuing from its checkpoint"), std::string::npos) << resumed.err;
  const json a = report_of(st, "whole"), b = report_of(st, "killed");
  ASSERT_EQ(a["budgets"][0]["contenders"].size(), b["budgets"][0]["contenders"].size());
  for (size_t i = 0; i < a["budgets"][0]["contenders"].size(); ++i) {
    EXPECT_EQ(a["budgets"][0]["contenders"][i]["bpb"], b["budgets"][0]["contenders"][i]["bpb"]) << i;
  }
}

// SIGTERM (raised in the 20th training step by the test-only hook, no timing
// involved) stops a comparison at the run's next step: exit 143, the run given
// back with its checkpoint (nothing of it evaluated or marked done), and the
// same command continues it to the numbers of an uninterrupted comparison.
TEST(CompareRuns, AStoppedComparisonExitsAtASafePointAndResumesToTheSameNumbers) {
  CompareStudy st;
  st.search();
  const CliResult whole = run_cli(st.compare_args("whole", {"--lr", "0.003", "--no-measure"}));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const auto args = st.compare_args("stopped", {"--lr", "0.003", "--no-measure", "--no-reuse"});
  const CliResult stopped = run_cli(args, {"env", "FLASHNAS_FAULT=term-compare-step:20"});
  EXPECT_EQ(stopped.exit_code, 143) << stopped.err;
  EXPECT_NE(stopped.err.find("compare: stopped in a run; run the same command again to continue it from its checkpoint"),
            std::string::npos)
      << stopped.err;
  EXPECT_EQ(stopped.err.find("not a model folder"), std::string::npos) << stopped.err;
  const std::string in_cmp = " FROM compare_runs r JOIN comparisons c ON c.id = r.comparison_id WHERE c.name = 'stopped'";
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*)" + in_cmp + " AND r.status = 'running'"), 0);
  const int64_t done = test::scalar(st.db, "SELECT COUNT(*)" + in_cmp + " AND r.status = 'done'");
  const CliResult resumed = run_cli(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("continuing from its checkpoint"), std::string::npos) << resumed.err;
  EXPECT_GT(test::scalar(st.db, "SELECT COUNT(*)" + in_cmp + " AND r.status = 'done'"), done);
  const json a = report_of(st, "whole"), b = report_of(st, "stopped");
  ASSERT_EQ(a["budgets"][0]["contenders"].size(), b["budgets"][0]["contenders"].size());
  for (size_t i = 0; i < a["budgets"][0]["contenders"].size(); ++i) {
    EXPECT_EQ(a["budgets"][0]["contenders"][i]["bpb"], b["budgets"][0]["contenders"][i]["bpb"]) << i;
  }
}

TEST(CompareRuns, TwoProcessesShareTheRunsThroughLeases) {
  CompareStudy st;
  st.search();
  // A worker (training only) and the command itself, at once. Whichever
  // claims what, every run is trained once and the report is complete.
  CliResult worker;
  std::thread t([&] { worker = run_cli(st.compare_args("two", {"--lr", "0.003", "--worker"})); });
  const CliResult main = run_cli(st.compare_args("two", {"--lr", "0.003"}));
  t.join();
  ASSERT_EQ(worker.exit_code, 0) << worker.err;
  ASSERT_EQ(main.exit_code, 0) << main.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs WHERE status <> 'done'"), 0);
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs WHERE phase = 'final' AND worker IS NULL"), 0);
  const json rep = report_of(st, "two");
  EXPECT_TRUE(rep["complete"].get<bool>());
  EXPECT_TRUE(rep["measured"].get<bool>());
  // The same numbers as one process alone would give.
  ASSERT_EQ(run_cli(st.compare_args("one", {"--lr", "0.003", "--no-measure", "--no-reuse"})).exit_code, 0);
  const json one = report_of(st, "one");
  for (size_t i = 0; i < rep["budgets"][0]["contenders"].size(); ++i) {
    EXPECT_EQ(rep["budgets"][0]["contenders"][i]["bpb"], one["budgets"][0]["contenders"][i]["bpb"]) << i;
  }
}

TEST(CompareRuns, ASearchSeededWithTheBaselinesTrainsThemFirst) {
  // Two budgets: together they have more designs than the population of 2.
  CompareStudy st("", "max_ms = 1.5\n\n[[budgets]]\nname = \"roomy\"\nworkload = \"batch=1,prompt=16,generate=8\"\nmax_ms = 3");
  std::string toml = test::slurp(st.config);
  test::replace_once(toml, "[search]\npopulation = 4\nsample = 2\n", "[search]\nseed_baselines = true\npopulation = 2\nsample = 2\n");
  st.dir.write("space.toml", toml);
  st.search();
  const SearchConfig cfg = SearchConfig::load(st.config);
  LutStore lut(st.db, Access::read_only);
  const LutTable table = LutTable::load(lut, lut.find_device(""), cfg.dtype, cfg.runtime);
  auto price = [&](const ArchSpec& a, size_t b) { return predict(a, cfg.budgets[b].workload, table).total_ms; };
  // Every budget's designs, even past the configured population (it grows).
  const auto seeds = baseline_seeds(cfg.space, cfg.budgets, price);
  ASSERT_GT(seeds.size(), size_t(cfg.search.population));
  StudyStore store(st.db, Access::read_only);
  const auto trials = store.trials(store.get_study("s").id);
  size_t i = 0;
  for (const auto& t : trials) {
    if (t.origin != "init") continue;
    ASSERT_LT(i, seeds.size());
    EXPECT_EQ(t.genome, seeds[i]) << i;
    ++i;
  }
  EXPECT_EQ(i, seeds.size());
}

// A hand design that is the pick's own architecture is not dropped as a
// repeat: it stays, marked, shares the pick's runs, and the verdict judges
// the pick as tied with it (a pick that is a baseline does not beat it).
TEST(CompareRuns, ABaselineThatIsThePicksArchitectureIsATieNotAWin) {
  CompareStudy st;
  st.search();
  std::string arch;
  {
    Db d(st.db, Access::read_only);
    Stmt q(d, "SELECT arch FROM trials WHERE status = 'done' ORDER BY rung DESC, bpb ASC LIMIT 1");
    ASSERT_TRUE(q.step());
    arch = q.text(0);
  }
  st.dir.write("same.json", arch);
  const CliResult r = run_cli(st.compare_args("same", {"--lr", "0.003", "--no-measure", "--baseline", (st.dir / "same.json").string()}, "1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("= user-same is the same architecture as pick-best"), std::string::npos) << r.out;
  const json rep = report_of(st, "same");
  const auto& b = rep["budgets"][0];
  json pick, user;
  for (const auto& c : b["contenders"]) {
    if (c["label"] == "pick-best") pick = c;
    if (c["label"] == "user-same") user = c;
  }
  ASSERT_FALSE(user.is_null()) << b.dump();
  EXPECT_EQ(user["bpb"], pick["bpb"]);
  bool judged = false;
  for (const auto& v : b["versus"]) {
    if (v["label"] != "user-same") continue;
    judged = true;
    EXPECT_EQ(v["delta_bpb"].get<double>(), 0.0);
    EXPECT_EQ(v["outcome"], "not lower");
  }
  EXPECT_TRUE(judged) << b.dump();
  EXPECT_FALSE(b["pick_wins"].get<bool>());
}

// --contender keeps pick-best and the named contenders only, trains only
// those, and the verdict says it covers them alone.
TEST(CompareRuns, ContenderLimitsTheComparisonAndTheVerdictSaysSo) {
  CompareStudy st;
  st.search();
  const CliResult r = run_cli(st.compare_args("only", {"--lr", "0.003", "--no-measure", "--contender", "mamba2-only"}, "1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("left out by --contender: "), std::string::npos) << r.err;
  const json rep = report_of(st, "only");
  for (const auto& b : rep["budgets"]) {
    std::set<std::string> labels;
    for (const auto& c : b["contenders"]) {
      labels.insert(c["label"].get<std::string>());
    }
    EXPECT_EQ(labels, (std::set<std::string>{"pick-best", "mamba2-only"})) << b.dump();
    EXPECT_NE(b["verdict"].get<std::string>().find("only these contenders were compared (--contender): mamba2-only"),
              std::string::npos)
        << b["verdict"];
  }
  // One seed per architecture: two final runs in all, nothing else trained.
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM compare_runs r JOIN comparisons c ON c.id = r.comparison_id "
                                "WHERE c.name = 'only' AND r.phase = 'final'"),
            2);
}

TEST(CompareRuns, BadInputIsRefusedByNameAndWritesNothing) {
  CompareStudy st;
  st.search();
  const auto before = test::file_tree(st.dir.path());
  auto expect_refused = [&](const std::vector<std::string>& args, const std::string& says) {
    const CliResult r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
    EXPECT_EQ(test::file_tree(st.dir.path()), before) << "written by: " << r.err;
  };
  expect_refused(st.with_db({"compare", "--study", "nope"}), "nope");
  expect_refused(st.with_db({"compare", "--study", "s", "--budget", "other"}), "no budget \"other\"");
  expect_refused(st.with_db({"compare", "--study", "s", "--contender", "bogus-only"}),
                 "--contender: no contender is labelled \"bogus-only\"");
  st.dir.write("not-arch.json", "{\"layers\": 3}");
  const auto with_file = test::file_tree(st.dir.path());
  const CliResult r = run_cli(st.with_db({"compare", "--study", "s", "--baseline", (st.dir / "not-arch.json").string()}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not-arch.json"), std::string::npos) << r.err;
  EXPECT_EQ(test::file_tree(st.dir.path()), with_file);
  // A comparison rerun with other settings is refused, naming what differs.
  ASSERT_EQ(run_cli(st.compare_args("x", {"--lr", "0.003", "--no-measure"}, "1")).exit_code, 0);
  const CliResult other = run_cli(st.compare_args("x", {"--lr", "0.001", "--no-measure"}, "1"));
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("other settings"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("lr_grid"), std::string::npos) << other.err;
  // Measuring on a machine that is not the table's device needs a flag.
  const CliResult elsewhere = run_cli(st.with_db({"compare", "--study", "s", "--name", "y", "--lr", "0.003"}));
  EXPECT_EQ(elsewhere.exit_code, 2);
  EXPECT_NE(elsewhere.err.find("--measure-anywhere"), std::string::npos) << elsewhere.err;
}

}  // namespace
}  // namespace flashnas
