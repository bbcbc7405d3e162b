// Search: spaces from TOML (genomes, mutation, repair, the profiler grid they
// imply), budgets, configs and their errors, the evolution's proposals, and
// whole studies through the CLI on a synthetic LUT: search, frontier, export,
// generate, SIGKILL and resume, unmeetable budgets, missing LUT entries,
// schema versions.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "common/db.h"
#include "common/toml_io.h"
#include "profiler/lut_table.h"
#include "profiler/lut.h"
#include "profiler/measure.h"
#include "profiler/predict.h"
#include "search/config.h"
#include "search/evolution.h"
#include "search/pareto.h"
#include "search/pricer.h"
#include "search/runner.h"
#include "study/study_store.h"
#include "test_util.h"
#include "tests/search_fixture.h"
#include "train/corpus.h"
#include "train/token_file.h"

namespace flashnas {
namespace {

using test::input_error_of;
using test::run_cli;
using test::TempDir;
using test::parse_config;
using test::replace_once;
using test::scalar;
using test::Study;
using test::synthetic_lut;
using test::tiny_config;
using test::tiny_data;

TEST(SearchSpace, TemplatesEvaluateExactlyOrSayWhy) {
  EXPECT_EQ(eval_template(json("d_model / 32"), 96, "f").get<int64_t>(), 3);
  EXPECT_EQ(eval_template(json("3 * d_model"), 96, "f").get<int64_t>(), 288);
  EXPECT_EQ(eval_template(json("d_model * 3 / 2"), 64, "f").get<int64_t>(), 96);
  EXPECT_EQ(eval_template(json(7), 64, "f").get<int64_t>(), 7);
  EXPECT_NE(input_error_of([] { eval_template(json("d_model / 5"), 64, "space.ops.ffn.d_ff"); })
                .find("space.ops.ffn.d_ff: \"d_model / 5\" does not divide exactly at d_model = 64"),
            std::string::npos);
  EXPECT_NE(input_error_of([] { eval_template(json("d_model + 1"), 64, "x"); }).find("joined by * and /"),
            std::string::npos);
}

TEST(SearchSpace, GenomesRoundTripRepairAndDecode) {
  const SearchConfig cfg = SearchConfig::load(std::string(test::source_dir()) + "/configs/demo.toml");
  const SearchSpace& sp = cfg.space;
  Rng rng(11);
  std::set<std::string> distinct;
  for (int i = 0; i < 300; ++i) {
    const Genome g = sp.random(rng);
    EXPECT_LE(sp.operators(g), sp.max_operators);
    ASSERT_EQ(int(g.stages.size()), sp.stages);
    for (const auto& s : g.stages) {
      EXPECT_GE(s.blocks, sp.min_blocks);
      EXPECT_LE(s.blocks, sp.max_blocks);
    }
    const std::string text = sp.genome_text(g);
    EXPECT_EQ(sp.parse_genome(text, "test"), g) << text;
    const ArchSpec a = sp.decode(g);
    EXPECT_EQ(int64_t(a.layers.size()), sp.operators(g));
    EXPECT_EQ(a.d_model, g.d_model);
    distinct.insert(a.hash());
  }
  EXPECT_GT(distinct.size(), 250u) << "random genomes should rarely repeat in this space";
}

TEST(SearchSpace, MutationChangesExactlyOneGene) {
  const SearchConfig cfg = SearchConfig::load(std::string(test::source_dir()) + "/configs/demo.toml");
  const SearchSpace& sp = cfg.space;
  Rng rng(12);
  for (int i = 0; i < 300; ++i) {
    const Genome p = sp.random(rng);
    const Genome c = sp.mutate(p, rng);
    ASSERT_FALSE(c == p);
    // Genes: width; per stage m1, m2, ratio, ffn; block counts (one gene
    // across stages, moved or changed by one). The cap may then shorten stages.
    int changed = c.d_model != p.d_model;
    bool blocks_changed = false;
    for (size_t s = 0; s < p.stages.size(); ++s) {
      changed += c.stages[s].m1 != p.stages[s].m1 && sp.ratios[p.stages[s].ratio].a > 0 &&
                 sp.ratios[c.stages[s].ratio].a > 0 && c.stages[s].ratio == p.stages[s].ratio;
      changed += c.stages[s].m2 != p.stages[s].m2;
      changed += c.stages[s].ratio != p.stages[s].ratio;
      changed += c.stages[s].ffn != p.stages[s].ffn;
      blocks_changed |= c.stages[s].blocks != p.stages[s].blocks;
    }
    // A ratio or FFN change can trigger the operator cap, which trims blocks.
    EXPECT_EQ(changed + (changed == 0 && blocks_changed), 1)
        << sp.genome_text(p) << " -> " << sp.genome_text(c);
    EXPECT_LE(sp.operators(c), sp.max_operators);
  }
}

TEST(SearchSpace, ProfilerGridCoversEveryOperatorTheSpaceEmits) {
  const SearchConfig cfg = SearchConfig::load(std::string(test::source_dir()) + "/configs/demo.toml");
  std::vector<Workload> ws;
  for (const auto& b : cfg.budgets) ws.push_back(b.workload);
  std::set<std::string> grid;
  for (const auto& k : plan_entries(cfg.space.grid_archs(), ws, "float32", "eager")) grid.insert(k.describe());
  std::set<std::string> ops_seen;
  Rng rng(13);
  for (int i = 0; i < 200; ++i) {
    const ArchSpec a = cfg.space.decode(cfg.space.random(rng));
    for (const auto& l : a.layers) ops_seen.insert(l.type);
    for (const auto& k : plan_entries({a}, ws, "float32", "eager")) {
      ASSERT_TRUE(grid.count(k.describe())) << "grid lacks " << k.describe();
    }
  }
  // Every mixer of the space (and the FFN) was emitted and covered.
  EXPECT_EQ(ops_seen, (std::set<std::string>{"attn", "swa", "mamba2", "deltanet", "ffn"}));
}

TEST(SearchSpace, LayerwiseGenomes) {
  std::string toml = tiny_config("/x.tokens");
  replace_once(toml, "kind = \"staged\"", "kind = \"layerwise\"\nlayers = [2, 5]");
  for (const char* drop : {"stages = 3\n", "blocks_per_stage = [1, 2]\n"}) toml.erase(toml.find(drop), std::strlen(drop));
  const SearchConfig cfg = parse_config(toml);
  const SearchSpace& sp = cfg.space;
  ASSERT_EQ(sp.kind, SearchSpace::Kind::Layerwise);
  Rng rng(21);
  for (int i = 0; i < 200; ++i) {
    const Genome g = sp.random(rng);
    EXPECT_GE(g.layers.size(), 2u);
    EXPECT_LE(g.layers.size(), 5u);
    EXPECT_LE(sp.operators(g), sp.max_operators);
    EXPECT_EQ(sp.parse_genome(sp.genome_text(g), "t"), g) << sp.genome_text(g);
    const Genome c = sp.mutate(g, rng);
    EXPECT_FALSE(c == g);
    // One gene: a layer's mixer, its FFN count, one layer more or less, or the width.
    const int64_t dl = int64_t(c.layers.size()) - int64_t(g.layers.size());
    EXPECT_LE(std::abs(dl), 1);
    if (dl == 0) {
      int changed = c.d_model != g.d_model;
      for (size_t l = 0; l < g.layers.size(); ++l) changed += (c.layers[l].mixer != g.layers[l].mixer) + (c.layers[l].ffn != g.layers[l].ffn);
      // Or a layer inserted, then the last one trimmed by the operator cap.
      bool inserted_and_trimmed = false;
      for (size_t l = 0; l < c.layers.size() && !inserted_and_trimmed; ++l) {
        auto rest = c.layers;
        rest.erase(rest.begin() + int64_t(l));
        inserted_and_trimmed = std::equal(rest.begin(), rest.end(), g.layers.begin());
      }
      EXPECT_TRUE(changed == 1 || inserted_and_trimmed) << sp.genome_text(g) << " -> " << sp.genome_text(c);
    }
  }
  EXPECT_NE(input_error_of([&] { sp.parse_genome("d=16 swa+f1 retnet+f0", "t"); }).find("\"retnet\" is not in space.mixers"),
            std::string::npos);
}

TEST(Pricer, FitWidthTakesTheLargestWidthWithinTheBudgets) {
  TempDir dir;
  // The synthetic LUT costs d_model us per decode step and 4 d_model per prefill.
  auto priced = [&](const std::string& budget) {
    std::string toml = tiny_config("/x.tokens", "", budget);
    replace_once(toml, "width = \"gene\"", "width = \"fit\"");
    const SearchConfig cfg = parse_config(toml);
    const auto db = dir / ("lut" + std::to_string(std::hash<std::string>{}(budget)) + ".db");
    synthetic_lut(cfg, db);
    LutStore lut(db, false);
    const LutTable table = LutTable::load(lut, lut.find_device(""), cfg.dtype, cfg.runtime);
    Pricer pricer(cfg, table);
    const Genome g = cfg.space.parse_genome("d=? 1x[swa f1] 1x[mamba2 f0] 1x[deltanet f0]", "t");
    Priced p = pricer.price(g);
    return std::make_pair(p, [&] {
      std::vector<double> ms;
      for (int64_t w : {16, 32}) ms.push_back(pricer.latencies(cfg.space.decode(g, w))[0]);
      return ms;
    }());
  };
  const auto [wide, ms] = priced("max_ms = 1000");
  ASSERT_TRUE(wide.arch);
  EXPECT_EQ(wide.genome.d_model, 32);
  EXPECT_LT(ms[0], ms[1]);
  // A limit between the two widths' latencies: the narrower one.
  const double between = 0.5 * (ms[0] + ms[1]);
  const auto [narrow, ms2] = priced("max_ms = " + std::to_string(between));
  ASSERT_TRUE(narrow.arch);
  EXPECT_EQ(narrow.genome.d_model, 16);
  EXPECT_EQ(narrow.arch->d_model, 16);
  // Below both: pruned, with the reason.
  const auto [none, ms3] = priced("max_ms = " + std::to_string(0.5 * ms[0]));
  EXPECT_FALSE(none.arch);
  EXPECT_NE(none.reason.find("over budget call"), std::string::npos) << none.reason;
  EXPECT_NE(none.reason.find("at the smallest width 16"), std::string::npos) << none.reason;
}

TEST(SearchConfig, BadConfigsNameTheFieldAndWhatIsAllowed) {
  const std::string good = tiny_config("/nonexistent.tokens");
  EXPECT_NO_THROW(parse_config(good));
  auto err = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const auto pos = t.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    t.replace(pos, from.size(), to);
    return input_error_of([&] { parse_config(t); });
  };
  EXPECT_NE(err("kind = \"staged\"", "kind = staged").find("TOML parse error at line 3"), std::string::npos);
  const std::string unknown_op = err("\"deltanet\"]", "\"retnet\"]");
  EXPECT_NE(unknown_op.find("space.mixers"), std::string::npos) << unknown_op;
  EXPECT_NE(unknown_op.find("retnet"), std::string::npos) << unknown_op;
  EXPECT_NE(unknown_op.find("mamba2"), std::string::npos) << "lists the valid operators: " << unknown_op;
  EXPECT_NE(err("max_operators = 8", "max_operators = 2").find("space.max_operators"), std::string::npos);
  EXPECT_NE(err("max_ms = 1000", "note = 1").find("budgets[0]"), std::string::npos);
  EXPECT_NE(err("d_ff = \"2 * d_model\"", "d_ff = \"d_model / 3\"").find("space.ops.ffn.d_ff"), std::string::npos);
  EXPECT_NE(err("tokens = 1024", "tokenz = 1024").find("train.tokenz"), std::string::npos);
  EXPECT_NE(err("population = 4", "population = 4\nbogus = 1").find("search.bogus"), std::string::npos);
  EXPECT_NE(err("population = 4", "population = 4\nalgorithm = \"annealing\"").find("search.algorithm"),
            std::string::npos);
  EXPECT_NE(err("generate=8", "generate=x").find("budgets[0].workload"), std::string::npos);
}

TEST(Budget, LimitsAndThroughput) {
  const auto bs = parse_budgets(json::parse(R"([{"name":"a","workload":"batch=4,prompt=8,generate=50","min_tokens_per_s":400},
                                               {"name":"b","workload":"prompt=8,generate=10","max_ms":30,"min_tokens_per_s":500}])"),
                                "t");
  EXPECT_DOUBLE_EQ(bs[0].limit_ms(), 500.0);  // 200 tokens at 400 tok/s
  EXPECT_TRUE(bs[0].met(500.0));
  EXPECT_FALSE(bs[0].met(500.1));
  EXPECT_DOUBLE_EQ(bs[0].tokens_per_s(250.0), 800.0);
  EXPECT_DOUBLE_EQ(bs[1].limit_ms(), 20.0);  // the tighter of 30 ms and 10 tokens at 500 tok/s
}

TEST(Evolution, ParetoRanks) {
  const auto r = pareto_ranks({{1, 5}, {2, 4}, {2, 6}, {3, 3}, {4, 4}, {5, 5}});
  EXPECT_EQ(r, (std::vector<int>{0, 0, 1, 0, 1, 2}));
}

TEST(Evolution, OffspringWaitForTheirCycleAndMutateTheTournamentWinner) {
  const SearchConfig cfg = parse_config(tiny_config("/x.tokens"));
  Rng rng(1);
  std::vector<TrialRow> trials;
  for (int64_t s = 0; s < 4; ++s) {
    auto p = propose(cfg, s, 0, trials, rng);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->origin, "random");
    TrialRow t;
    t.number = s;
    t.slot = s;
    t.genome = cfg.space.genome_text(p->genome);
    t.status = s == 3 ? "running" : "done";
    t.loss = double(10 - s);
    t.latency_ms = 1;
    trials.push_back(t);
  }
  // Slot 4 opens cycle 0, which needs slots 0..3 finished.
  EXPECT_FALSE(propose(cfg, 4, 0, trials, rng));
  trials[3].status = "done";
  trials[3].loss = 1;  // the best member
  int from_best = 0;
  for (int i = 0; i < 200; ++i) {
    auto p = propose(cfg, 4, 0, trials, rng);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->origin, "mutation");
    EXPECT_EQ(p->cycle, 0);
    from_best += p->parent == 3;
  }
  // Tournament of 2 out of 4: the best is in the sample with probability 1/2.
  EXPECT_GT(from_best, 70);
  EXPECT_LT(from_best, 130);
}

// Four finished members, the last one best: every tournament it enters wins.
std::vector<TrialRow> finished_population(const SearchConfig& cfg, Rng& rng) {
  std::vector<TrialRow> trials;
  for (int64_t s = 0; s < cfg.search.population; ++s) {
    auto p = propose(cfg, s, 0, trials, rng);
    TrialRow t;
    t.number = s;
    t.slot = s;
    t.genome = cfg.space.genome_text(p->genome);
    t.status = "done";
    t.loss = double(10 - s);
    t.latency_ms = 1;
    trials.push_back(t);
  }
  return trials;
}

TEST(Evolution, AChildTheStudyHoldsOrCannotAffordIsMutatedAgain) {
  std::string toml = tiny_config("/x.tokens");
  replace_once(toml, "sample = 2", "sample = 4");  // the whole population: trial 3 always wins
  const SearchConfig cfg = parse_config(toml);
  Rng rng(5);
  const auto trials = finished_population(cfg, rng);
  // The pricer turns down the first two children (as the runner's does for an
  // architecture already in the study or outside the budgets): the third is
  // proposed, a mutant of the same parent.
  std::vector<std::string> priced;
  const CandidateFn take_third = [&](const Genome& g) -> std::optional<Candidate> {
    priced.push_back(cfg.space.genome_text(g));
    if (priced.size() < 3) return std::nullopt;
    return Candidate{g, 1, {1.0}};
  };
  auto p = propose(cfg, 4, 0, trials, rng, &take_third);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->origin, "mutation");
  ASSERT_EQ(priced.size(), 3u);
  EXPECT_EQ(cfg.space.genome_text(p->genome), priced[2]);
  EXPECT_EQ(*p->parent, 3);
  EXPECT_NE(cfg.space.genome_text(p->genome), trials[3].genome);
  // A parent whose every child is turned down: the draws are bounded (16), and
  // the last child still goes to the runner, which reuses or prunes it.
  priced.clear();
  const CandidateFn refuse = [&](const Genome& g) -> std::optional<Candidate> {
    priced.push_back(cfg.space.genome_text(g));
    return std::nullopt;
  };
  p = propose(cfg, 4, 0, trials, rng, &refuse);
  ASSERT_TRUE(p);
  EXPECT_EQ(priced.size(), 16u);
  EXPECT_EQ(cfg.space.genome_text(p->genome), priced.back());
  // Without a pricer there is one draw, as before.
  Rng a(9), b(9);
  const auto plain = propose(cfg, 4, 0, trials, a);
  priced.clear();
  const CandidateFn accept = [&](const Genome& g) -> std::optional<Candidate> {
    priced.push_back(cfg.space.genome_text(g));
    return Candidate{g, 1, {1.0}};
  };
  const auto checked = propose(cfg, 4, 0, trials, b, &accept);
  EXPECT_EQ(priced.size(), 1u);
  EXPECT_EQ(cfg.space.genome_text(plain->genome), cfg.space.genome_text(checked->genome));
}

TEST(SearchConfig, PopulationLeftOutFollowsTheBudgetAndIsRecorded) {
  std::string toml = tiny_config("/x.tokens");
  replace_once(toml, "population = 4\nsample = 2\noffspring = 2\ntrials = 8\n", "trials = 24\n");
  SearchConfig cfg = parse_config(toml);
  EXPECT_EQ(cfg.search.population, 4);
  EXPECT_EQ(cfg.search.sample, 2);
  EXPECT_EQ(cfg.search.offspring, 2);
  EXPECT_EQ(cfg.doc["search"]["population"], 4);
  EXPECT_EQ(cfg.doc["search"]["offspring"], 2);
  replace_once(toml, "trials = 24", "trials = 200");
  cfg = parse_config(toml);
  EXPECT_EQ(cfg.search.population, 13);  // round(200 / 16)
  EXPECT_EQ(cfg.search.sample, 4);
  EXPECT_EQ(cfg.search.offspring, 7);
  // With rungs: the full-length runs the token budget buys (3.2M / 32768 = 100).
  replace_once(toml, "trials = 200", "fidelities = [8192, 32768]\ntoken_budget = 3276800");
  cfg = parse_config(toml);
  EXPECT_EQ(cfg.search.population, 6);
  // Given settings are kept, and the derived ones follow the given population.
  replace_once(toml, "fidelities", "population = 9\nfidelities");
  cfg = parse_config(toml);
  EXPECT_EQ(cfg.search.population, 9);
  EXPECT_EQ(cfg.search.sample, 3);
  EXPECT_EQ(cfg.search.offspring, 5);
  EXPECT_FALSE(cfg.doc["search"].contains("population") && cfg.doc["search"]["population"] != 9);
  EXPECT_EQ(default_population(0), 4);
  EXPECT_EQ(default_population(100000), 64);
}

// ---- Whole studies through the CLI (synthetic LUT, tiny training) ----

TEST(SearchCli, StudyFrontierExportAndGenerate) {
  Study st;
  auto r = run_cli([&] {
    auto a = st.search_args();
    a.push_back("--json");
    return a;
  }());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["trained"].get<int>(), 8);
  EXPECT_TRUE(j["finished"].get<bool>());
  EXPECT_NE(r.err.find("trial 0 [random]"), std::string::npos) << "one line per finished trial:\n" << r.err;
  // Where the worker's time went: the parts are measured, none negative, and they add up to its wall time.
  {
    const json& t = j["worker"]["times"];
    const double wall = j["worker"]["wall_s"].get<double>();
    double parts = 0;
    for (const char* k : {"train_s", "task_s", "plan_s", "db_s", "idle_s", "other_s"}) {
      EXPECT_GE(t[k].get<double>(), 0) << k;
      parts += t[k].get<double>();
    }
    EXPECT_GT(t["train_s"].get<double>(), 0);
    EXPECT_GT(t["db_s"].get<double>(), 0);
    EXPECT_NEAR(parts, wall, 1e-6 * wall + 1e-9);
    EXPECT_NEAR(t["overhead_s"].get<double>(), wall - t["train_s"].get<double>() - t["task_s"].get<double>() - t["idle_s"].get<double>(), 1e-9);
  }
  // Every trained trial meets its budget by prediction, and its prediction is the LUT's.
  {
    StudyStore store(st.db, false);
    LutStore lut(st.db, false);
    const int64_t dev = lut.find_device("");
    const auto cfg = parse_config(read_file(st.config));
    for (const auto& t : store.trials(store.get_study("s").id)) {
      if (t.status != "done") continue;
      const ArchSpec a = ArchSpec::from_json(json::parse(t.arch), "t");
      const double ms = predict(a, cfg.budgets[0].workload, lut, dev, "float32", "eager").total_ms;
      EXPECT_NEAR(t.predicted["call"].get<double>(), ms, 1e-9);
      EXPECT_LE(ms, 1000.0);
      EXPECT_TRUE(std::isfinite(t.loss));
      if (!t.reused_from) {
        EXPECT_FALSE(store.curve(t.id).empty()) << "trial " << t.number << " has no curve";
      }
    }
  }
  // Frontier: members are trained trials, sorted by latency with falling loss; SVG drawn.
  const std::string svg = (st.dir / "f.svg").string();
  r = run_cli({"frontier", "--db", st.db, "--study", "s", "--json", "--svg", svg});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json f = json::parse(r.out);
  const auto& front = f["budgets"][0]["frontier"];
  ASSERT_FALSE(front.empty());
  for (size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(front[i]["predicted_ms"].get<double>(), front[i - 1]["predicted_ms"].get<double>());
    EXPECT_LT(front[i]["bpb"].get<double>(), front[i - 1]["bpb"].get<double>());
  }
  EXPECT_GT(f["budgets"][0]["hypervolume"].get<double>(), 0);
  const std::string plot = read_file(svg);
  EXPECT_NE(plot.find("<svg"), std::string::npos);
  EXPECT_NE(plot.find("predicted latency (ms)"), std::string::npos);
  EXPECT_NE(plot.find("validation loss (bits/byte)"), std::string::npos);
  EXPECT_NE(plot.find("budget 1000 ms"), std::string::npos);
  // Export the best trial, then decode from it. A work folder an earlier
  // export left when it was killed (its mark names a process of this host
  // that has ended) is cleaned up; one without the mark is not flashnas's.
  const std::string out = (st.dir / "model").string();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::filesystem::create_directories(out + ".tmp-999999999");
  std::ofstream(out + ".tmp-999999999/.flashnas-work") << host << " 999999999\n";
  std::filesystem::create_directories(out + ".tmp-1");
  std::ofstream(out + ".tmp-1/notes.txt") << "a user's folder\n";
  r = run_cli({"export", "--db", st.db, "--study", "s", "--out", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp-999999999"));
  EXPECT_TRUE(std::filesystem::exists(out + ".tmp-1/notes.txt"));
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(out) / ".flashnas-work"));
  const json lat = json::parse(r.out);
  EXPECT_TRUE(lat["budgets"][0]["measured_ms"].is_null()) << "the synthetic LUT's device is not this machine";
  EXPECT_NE(lat["budgets"][0]["why_not_measured"].get<std::string>().find("not the LUT's device"), std::string::npos);
  for (const char* name : {"model.safetensors", "config.json", "latency.json", "README.md", "curve.csv",
                           "modeling_flashnas.py", "configuration_flashnas.py", "generation_config.json", "tokenizer.json"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out) / name)) << name;
  }
  EXPECT_EQ(load_json_file(std::filesystem::path(out) / "config.json")["arch_hash"].get<std::string>(),
            ArchSpec::from_json(load_json_file(std::filesystem::path(out) / "config.json")["arch"], "x").hash());
  r = run_cli({"generate", "--model", out, "--prompt", "the quick", "--tokens", "12", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json g = json::parse(r.out);
  EXPECT_EQ(g["tokens"].get<int>(), 12);
  EXPECT_GT(g["decode_ms_per_token"].get<double>(), 0);
  // Exporting over an existing folder is refused, and writes nothing.
  r = run_cli({"export", "--db", st.db, "--study", "s", "--out", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  // A failed trial cannot be exported; an unknown study lists the known ones.
  r = run_cli({"frontier", "--db", st.db, "--study", "nope"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no study named \"nope\"; studies here: s"), std::string::npos) << r.err;
  // Rerunning a complete study trains nothing more.
  r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("trial "), std::string::npos) << r.err;
  // The same study name with another config is refused.
  st.dir.write("space.toml", read_file(st.config) + "\n");
  std::string other = read_file(st.config);
  other.replace(other.find("seed = 3"), 8, "seed = 4");
  st.dir.write("space.toml", other);
  r = run_cli(st.search_args());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("was created with a different config"), std::string::npos) << r.err;
}

// SIGTERM in the middle of a trial's training (raised by the test-only fault
// hook at the 3rd step, no timing involved): the search stops at that step,
// the trial goes back to pending (nothing half-done is stored), it exits 143
// saying so, and the same command finishes the study.
TEST(SearchCli, SigtermStopsSafelyAndTheSameCommandFinishesTheStudy) {
  test::Study st;
  setenv("FLASHNAS_FAULT", "term-train-step:3", 1);
  auto r = run_cli(st.search_args());
  unsetenv("FLASHNAS_FAULT");
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_NE(r.err.find("search: study \"s\" stopped in trial 0; it goes back to pending"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(stopped by SIGTERM)"), std::string::npos) << r.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status NOT IN ('pending', 'done')"), 0);
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done'"), 0);
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 0);
  r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND reused_from IS NULL"), 8);
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 1);
}

// The same with two worker processes: the parent stops at its first claim
// and passes the signal on to its worker, which stops at its own safe point;
// whatever the order, nothing is left running and the rerun finishes.
TEST(SearchCli, SigtermStopsEveryWorkerSafely) {
  test::Study st;
  auto args = st.search_args();
  args.insert(args.end(), {"--workers", "2"});
  setenv("FLASHNAS_FAULT", "term-claim:1", 1);
  auto r = run_cli(args);
  unsetenv("FLASHNAS_FAULT");
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status NOT IN ('pending', 'done')"), 0) << r.err;
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'done' AND reused_from IS NULL"), 8);
}

TEST(SearchCli, KilledAtEveryKindOfMomentResumesWithoutLossOrDuplicates) {
  Study st;
  // Each run is killed (SIGKILL, from inside the worker: search/runner.cpp's
  // test-only FLASHNAS_FAULT) at an exact point: right after a claim, in the
  // middle of a training run, right after a result is committed. Together
  // they finish 5 of the study's 8 trials, so every run dies mid-study
  // whatever this machine's speed.
  const std::vector<std::string> faults = {"kill-claim:2",      "kill-train-step:5", "kill-result:1",
                                           "kill-train-step:20", "kill-claim:1",      "kill-result:2"};
  std::vector<std::string> args = {test::flashnas_bin()};
  for (const auto& a : st.search_args()) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int killed = 0;
  for (const auto& f : faults) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      setenv("FLASHNAS_FAULT", f.c_str(), 1);
      execv(argv[0], argv.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << f << ": the run was not killed mid-study";
    killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    Db check(st.db, false);
    Stmt q(check, "PRAGMA integrity_check");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), "ok");
  }
  EXPECT_EQ(killed, int(faults.size()));
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Slots 0..n-1 each exactly once; exactly `trials` architectures trained;
  // nothing left in flight; every trained trial has its curve.
  const int64_t slots = scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL");
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT slot) FROM trials WHERE slot IS NOT NULL"), slots);
  EXPECT_EQ(scalar(st.db, "SELECT MAX(slot) + 1 FROM trials"), slots);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status IN ('running', 'pending')"), 0);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE reused_from IS NULL AND status = 'done' AND id NOT IN "
                          "(SELECT trial_id FROM trial_curves)"),
            0);
  // No architecture was trained twice.
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT hash) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM studies WHERE finished_at IS NOT NULL"), 1);
}

TEST(SearchCli, TwoWorkersShareOneStudy) {
  Study st;
  auto args = st.search_args();
  args.insert(args.end(), {"--workers", "2"});
  const auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT hash) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(DISTINCT worker) FROM trials WHERE worker IS NOT NULL"), 2)
      << "both processes trained trials";
}

// kill -9 on the parent of `search --workers 2` takes its worker with it (the
// worker used to be re-parented and go on training and writing). The waits
// below wait for events (a row, a process's end), up to a minute each.
TEST(SearchCli, AKilledParentTakesItsWorkersWithIt) {
  Study st("", "max_ms = 1000");
  std::string toml = read_file(st.config);
  replace_once(toml, "trials = 8", "trials = 400");  // far more than the test lets it train
  st.dir.write("space.toml", toml);
  std::vector<std::string> args = {test::flashnas_bin()};
  for (const auto& a : st.search_args()) args.push_back(a);
  args.insert(args.end(), {"--workers", "2"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // The worker's pid, once it has claimed a trial (worker ids are host:pid:start).
  pid_t child = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (child == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!std::filesystem::exists(st.db)) continue;
    try {
      Db d(st.db, false);
      Stmt q(d, "SELECT DISTINCT worker FROM trials WHERE worker IS NOT NULL");
      while (q.step()) {
        const std::string w = q.text(0);
        const auto a = w.find(':'), b = w.rfind(':');
        const pid_t pid = pid_t(std::stoll(w.substr(a + 1, b - a - 1)));
        if (pid != parent) child = pid;
      }
    } catch (const std::exception&) {
      // the tables may not exist yet
    }
  }
  ASSERT_NE(child, 0) << "the worker process never claimed a trial";
  kill(parent, SIGKILL);
  int status = 0;
  waitpid(parent, &status, 0);
  bool gone = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!gone && std::chrono::steady_clock::now() < until) {
    // Gone, or a zombie waiting for whoever adopted it to reap it.
    std::ifstream stat("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    gone = !std::getline(stat, line) || line.substr(line.rfind(')') + 2, 1) == "Z";
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!gone) kill(child, SIGKILL);
  EXPECT_TRUE(gone) << "worker " << child << " outlived its parent";
}

TEST(SearchCli, UnmeetableBudgetsAndMissingEntriesAreClearErrors) {
  {
    Study st("", "max_ms = 0.001");
    const auto r = run_cli(st.search_args());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("meets the budgets and constraints; the fastest was d="), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("over budget call"), std::string::npos) << r.err;
    EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'studies'"), 0)
        << "no study was created";
  }
  {
    Study st("", "max_ms = 1000", /*drop_lut_entry=*/true);
    const auto r = run_cli(st.search_args());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("the latency table lacks 1 of the"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("run flashnas profile --space"), std::string::npos) << r.err;
  }
  {
    Study st;
    { StudyStore s(st.db, true); }
    {
      Db d(st.db, false);
      d.exec("UPDATE meta SET value = '99' WHERE key = 'study_schema_version'");
    }
    const auto r = run_cli(st.search_args());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("study schema version 99; this flashnas reads version 4"), std::string::npos) << r.err;
  }
}

TEST(SearchCli, AnUnreliableOrUnvalidatedTableIsRefusedUnlessAccepted) {
  for (const std::string verdict : {"unreliable", ""}) {
    Study st("", "max_ms = 1000", false, verdict);
    auto r = run_cli(st.search_args());
    EXPECT_EQ(r.exit_code, 2) << verdict;
    EXPECT_NE(r.err.find("the latency table is not reliable for this search's budgets: call ("), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(verdict.empty() ? "(unvalidated): the table was never validated" : "(unreliable): synthetic"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("--accept-unreliable-lut"), std::string::npos) << r.err;
    EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'studies'"), 0) << "no study was created";
    auto args = st.search_args();
    args.push_back("--accept-unreliable-lut");
    r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    StudyStore store(st.db, false);
    const json lut = store.get_study("s").lut_table;
    EXPECT_TRUE(lut["accepted_unreliable"].get<bool>());
    EXPECT_EQ(lut["budgets"][0]["status"], verdict.empty() ? "unvalidated" : verdict);
    EXPECT_EQ(lut["device"].get<std::string>().rfind("cpu|synthetic", 0), 0u) << lut.dump();
  }
  // A reliable table is recorded as such.
  Study ok;
  ASSERT_EQ(run_cli(ok.search_args()).exit_code, 0);
  StudyStore store(ok.db, false);
  const json lut = store.get_study("s").lut_table;
  EXPECT_EQ(lut["verdict"], "reliable");
  EXPECT_FALSE(lut["accepted_unreliable"].get<bool>());
}

TEST(SearchCli, ADivergingCandidateFailsWithItsReasonAndTheSearchGoesOn) {
  Study st;
  // A learning rate no model survives: every run diverges.
  std::string toml = read_file(st.config);
  replace_once(toml, "tokens = 1024", "tokens = 1024\nlr = 1e12\ngrad_clip = 0\nweight_norm = false");
  st.dir.write("space.toml", toml);
  const auto r = run_cli(st.search_args());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'failed' AND reused_from IS NULL"), 8);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE status = 'failed' AND reason LIKE '%loss%'"), 8);
  EXPECT_NE(r.err.find("failed: "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("8 failed"), std::string::npos) << r.out;
  // Nothing trained: export says so.
  const auto e = run_cli({"export", "--db", st.db, "--study", "s", "--out", (st.dir / "m").string()});
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("has no trained trial to export"), std::string::npos) << e.err;
  EXPECT_FALSE(std::filesystem::exists(st.dir / "m"));
}

TEST(SearchCli, RandomBaselineFromTheSameConfig) {
  Study st;
  auto args = st.search_args("rand");
  args.insert(args.end(), {"--algorithm", "random", "--json"});
  const auto r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE origin = 'mutation'"), 0);
  EXPECT_EQ(scalar(st.db, "SELECT COUNT(*) FROM trials WHERE slot IS NOT NULL AND reused_from IS NULL"), 8);
  StudyStore store(st.db, false);
  EXPECT_EQ(store.get_study("rand").config["search"]["algorithm"], "random");
}

}  // namespace
}  // namespace flashnas

namespace flashnas {
namespace {

// A worker that died (an error, a kill) stays a zombie until its parent
// reaps it; its trial must be taken back meanwhile, so a zombie is not alive.
TEST(Workers, AWorkerThatExitedIsNotAliveBeforeItIsReaped) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // waits for the pipe to close, then exits
    close(fds[1]);
    char c;
    while (read(fds[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(fds[0]);
  auto stat_fields = [&] {
    std::ifstream in("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(in, line);
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::vector<std::string> f(1, "");  // f[i]: field i + 2
    for (std::string x; rest >> x;) f.push_back(x);
    return f;
  };
  const std::string me = worker_identity();
  const std::string id = me.substr(0, me.find(':')) + ":" + std::to_string(child) + ":" + stat_fields()[20];
  EXPECT_TRUE(worker_alive(id)) << id;
  close(fds[1]);  // the child exits and, unreaped, becomes a zombie
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, id_t(child), &info, WEXITED | WNOWAIT), 0);  // it has exited; still unreaped
  ASSERT_EQ(stat_fields()[1], "Z");
  EXPECT_FALSE(worker_alive(id)) << id;
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_FALSE(worker_alive(id));
}

}  // namespace
}  // namespace flashnas
