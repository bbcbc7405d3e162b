// The profiling session (interleaved rounds, probe, finalising, verdict),
// the machine's cache sizes, the outside-the-space architectures and the
// judgement of a measurement against a table.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/error.h"
#include "common/db.h"
#include "profiler/judge.h"
#include "profiler/lut_table.h"
#include "profiler/predict.h"
#include "profiler/probe.h"
#include "profiler/session.h"
#include "search/config.h"
#include "search/profile_space.h"
#include "test_util.h"

namespace flashnas {
namespace {

using test::TempDir;

DeviceInfo fake_device() {
  DeviceInfo d;
  d.device = "cpu";
  d.name = "synthetic";
  d.threads = 1;
  d.torch_version = "test";
  d.build_type = "Release";
  return d;
}

ArchSpec tiny(int64_t d, const std::string& mixer, int ffns) {
  json layers = json::array();
  layers.push_back(mixer == "attn" ? json{{"type", "attn"}, {"n_heads", d / 16}, {"n_kv_heads", 1}} : json{{"type", "mamba2"}, {"head_dim", 16}});
  for (int i = 0; i < ffns; ++i) layers.push_back({{"type", "ffn"}, {"d_ff", 2 * d}});
  return ArchSpec::from_json(json{{"d_model", d}, {"layers", layers}}, "tiny");
}

TimingStats stats(double us) { return summarize({us}); }

// A store with every entry the architectures need, 2 rounds each (the second
// `slow` times the first), and whole-model runs whose measured total is
// `measured(arch, raw sum)` in round 1 and `second(...)` in round 2.
struct Synthetic {
  TempDir dir;
  std::unique_ptr<LutStore> store;
  int64_t dev = 0;
  Workload w = Workload::parse("prompt=8,generate=4");
  std::vector<ArchSpec> fit, held;

  Synthetic() {
    store = std::make_unique<LutStore>(dir / "lut.db", true);
    dev = store->add_device(fake_device());
    int i = 0;
    for (int64_t d : {32, 48, 64}) {
      for (const std::string m : {"attn", "mamba2"}) {
        for (int f = 0; f < 3; ++f) (i++ % 3 == 2 ? held : fit).push_back(tiny(d, m, f));
      }
    }
  }
  double entry_us(const LutKey& k) const {
    return double(k.d_model) * (k.phase == Phase::Prefill ? 4.0 : 1.0) * (k.op == "ffn" ? 0.5 : 1.0);
  }
  void put_entries(double slow) {
    std::vector<ArchSpec> all = fit;
    all.insert(all.end(), held.begin(), held.end());
    for (const auto& k : plan_entries(all, {w}, "float32", "eager")) {
      store->put_round(dev, k, 1, stats(entry_us(k)), ProbeReading{100, 100}, 1);
      store->put_round(dev, k, 2, stats(slow * entry_us(k)), ProbeReading{100, 100}, 1);
    }
  }
  double raw_ms(const ArchSpec& a) const {
    LutTable t("float32", "eager");
    for (const auto& k : plan_entries({a}, {w}, "float32", "eager")) t.set(k, entry_us(k));
    return predict(a, w, t, false).total_ms;
  }
  void put_runs(const std::string& role, const std::vector<ArchSpec>& archs,
                const std::function<double(size_t, double, int)>& measured) {
    for (size_t i = 0; i < archs.size(); ++i) {
      for (int round = 1; round <= 2; ++round) {
        RunRow r;
        r.role = role;
        r.arch_hash = archs[i].hash();
        r.arch = archs[i].to_json().dump();
        r.workload = w.str();
        r.batch = 1;
        r.dtype = "float32";
        r.runtime = "eager";
        r.round = round;
        r.total_us = 1e3 * measured(i, raw_ms(archs[i]), round);
        r.probe = ProbeReading{100, 100};
        store->put_run(dev, r);
      }
    }
  }
};

TEST(LatencySession, FinalizeFitsTheModelValidatesAndJudgesReliable) {
  Synthetic s;
  s.put_entries(1.5);  // round 2 slower: the fastest round is kept
  // The whole models cost 1.3x their entry sums; round 2 is 3% slower.
  auto truth = [](size_t, double raw, int round) { return 1.3 * raw * (round == 2 ? 1.03 : 1.0); };
  s.put_runs("fit", s.fit, truth);
  s.put_runs("validate", s.held, truth);
  // raw_min by name (the default, auto, may take another policy that fits as well).
  const json rep = finalize_table(*s.store, s.dev, "float32", "eager", {s.w}, "raw_min");
  ASSERT_EQ(rep["models"].size(), 1u);
  const json& scale = rep["models"][0]["candidates"]["scale"];
  EXPECT_NEAR(scale["prefill_scale"].get<double>(), 1.3, 1e-6);
  EXPECT_NEAR(scale["decode_scale"].get<double>(), 1.3, 1e-6);
  ASSERT_EQ(rep["validation"].size(), 1u);
  EXPECT_DOUBLE_EQ(rep["validation"][0]["within_10pct"].get<double>(), 1.0);
  EXPECT_LT(rep["validation"][0]["worst_abs_error"].get<double>(), 1e-3);
  EXPECT_EQ(rep["verdict"]["status"], "reliable");
  // The spread: round 1 against round 2, 3% apart.
  EXPECT_NEAR(rep["spread"][0]["median_abs_diff"].get<double>(), 0.03 / 1.03, 1e-9);
  // The table's entries hold the fastest round, and predictions use the model.
  LutTable table = LutTable::load(*s.store, s.dev, "float32", "eager");
  EXPECT_NEAR(predict(s.held[0], s.w, table).total_ms, 1.3 * s.raw_ms(s.held[0]), 1e-6);
  EXPECT_FALSE(table.report.is_null());
  EXPECT_EQ(table.report["verdict"]["status"], "reliable");
  // Every policy and model kind is compared on the held-out runs.
  std::set<std::string> seen;
  for (const auto& c : rep["comparison"]) seen.insert(c["policy"].get<std::string>() + "/" + c["model"].get<std::string>());
  for (const auto& p : kPolicies) {
    for (const std::string m : {"sum", "scale", "chosen"}) EXPECT_TRUE(seen.count(p + "/" + m)) << p << "/" << m;
  }
  EXPECT_NE(report_text(rep).find("table verdict: reliable"), std::string::npos) << report_text(rep);
}

// --policy auto: the policy whose chosen model cross-validates best on the
// fit runs, recorded with every policy's CV error; its table is the one that
// policy gives when asked for by name.
TEST(LatencySession, AutoPolicyTakesTheLowestCrossValidatedError) {
  auto make = [] {
    auto s = std::make_unique<Synthetic>();
    s->put_entries(1.5);
    // Round 2 of every whole model is 20% slower for half the architectures:
    // the policies disagree on what was measured, and their fits differ.
    auto truth = [](size_t i, double raw, int round) { return 1.3 * raw * (round == 2 && i % 2 ? 1.2 : 1.0); };
    s->put_runs("fit", s->fit, truth);
    s->put_runs("validate", s->held, truth);
    return s;
  };
  auto a = make();
  const json rep = finalize_table(*a->store, a->dev, "float32", "eager", {a->w}, "auto");
  EXPECT_EQ(rep["policy_requested"], "auto");
  std::string best;
  double best_cv = 1e300;
  for (const auto& p : kPolicies) {
    ASSERT_TRUE(rep["policy_cv"].contains(p)) << p;
    const double cv = rep["policy_cv"][p]["mean"].get<double>();
    if (cv < best_cv) best_cv = cv, best = p;
  }
  EXPECT_EQ(rep["policy"], best);
  double worst_cv = 0;
  for (const auto& p : kPolicies) worst_cv = std::max(worst_cv, rep["policy_cv"][p]["mean"].get<double>());
  EXPECT_GT(worst_cv - best_cv, 1e-3) << "the policies' fits must differ for the choice to mean something: "
                                      << rep["policy_cv"].dump();
  auto b = make();
  const json named = finalize_table(*b->store, b->dev, "float32", "eager", {b->w}, best);
  EXPECT_EQ(named["policy"], best);
  EXPECT_EQ(rep["validation"], named["validation"]);
  EXPECT_EQ(rep["models"], named["models"]);
  EXPECT_NE(test::input_error_of([&] { finalize_table(*b->store, b->dev, "float32", "eager", {b->w}, "fastest"); })
                .find("must be auto or one of raw_min"),
            std::string::npos);
}

TEST(LatencySession, VerdictSaysUnreliableOrLimitedWithTheReason) {
  {
    // Held-out models that the entries do not predict (every second one 1.6x),
    // measured repeatably: unreliable, and it says why and what to do.
    Synthetic s;
    s.put_entries(1.0);
    s.put_runs("fit", s.fit, [](size_t, double raw, int) { return raw; });
    s.put_runs("validate", s.held, [](size_t i, double raw, int) { return raw * (i % 2 ? 1.6 : 1.0); });
    const json rep = finalize_table(*s.store, s.dev, "float32", "eager", {s.w});
    const json& v = rep["verdict"]["workloads"][0];
    EXPECT_EQ(v["status"], "unreliable");
    EXPECT_NE(v["reasons"][0].get<std::string>().find("validation below the bar"), std::string::npos) << v.dump();
    EXPECT_NE(v["advice"][0].get<std::string>().find("rerun flashnas profile"), std::string::npos) << v.dump();
    EXPECT_EQ(rep["verdict"]["status"], "unreliable");
  }
  {
    // A machine whose two measurements of one model differ by 26% (1.15x and
    // 1.45x the truth, in either order), with predictions (13% low) no worse
    // than that: limited, said so.
    Synthetic s;
    s.put_entries(1.0);
    s.put_runs("fit", s.fit, [](size_t, double raw, int) { return raw; });
    s.put_runs("validate", s.held, [](size_t i, double raw, int round) {
      return raw * ((round == 1) == (i % 2 == 0) ? 1.15 : 1.45);
    });
    const json rep = finalize_table(*s.store, s.dev, "float32", "eager", {s.w});
    const json& v = rep["verdict"]["workloads"][0];
    EXPECT_EQ(v["status"], "limited") << v.dump(2);
    EXPECT_NE(v.dump().find("the table is as good as this machine can be measured"), std::string::npos);
  }
  {
    // No held-out runs: never validated.
    Synthetic s;
    s.put_entries(1.0);
    const json rep = finalize_table(*s.store, s.dev, "float32", "eager", {s.w});
    EXPECT_EQ(rep["verdict"]["status"], "unreliable");
    EXPECT_NE(rep["verdict"]["workloads"][0]["reasons"][0].get<std::string>().find("not validated"), std::string::npos);
  }
}

TEST(LatencySession, RunsEntriesAndModelsInterleavedWithTheProbeAndResumes) {
  TempDir dir;
  LutStore store(dir / "lut.db", true);
  const int64_t dev = store.add_device(fake_device());
  const ArchSpec a = tiny(32, "attn", 1), b = tiny(32, "mamba2", 1);
  const Workload w = Workload::parse("prompt=8,generate=3");
  const auto entries = plan_entries({a, b}, {w}, "float32", "eager");
  const std::vector<ModelRunSpec> runs = {{"fit", a, w, "a"}, {"validate", b, w, "b"}};
  MeasureOptions m;
  m.timing.warmup = 1;
  m.timing.min_count = 2;
  m.timing.min_seconds = 0;
  m.attempts = 1;
  SessionOptions so;
  so.rounds = 2;
  so.run_rounds = 2;
  so.run_timing = m.timing;
  so.probe_bytes = 1 << 20;
  // Entries take the session's own timing rule when it has one.
  TimingOptions entry_timing = m.timing;
  entry_timing.min_count = 3;
  so.entry_timing = entry_timing;
  std::vector<std::string> order;
  const SessionReport r = run_session(entries, runs, store, dev, m, so, [&](const SessionProgress& p) {
    order.push_back(p.what);
    EXPECT_GT(p.probe.compute_us, 0);
    EXPECT_GT(p.probe.memory_us, 0);
  });
  const int64_t items = int64_t(entries.size() + runs.size());
  EXPECT_EQ(r.measured, 2 * items);
  EXPECT_EQ(r.skipped, 0);
  // Round 1 of everything before any round 2, and the runs not all at one end.
  ASSERT_EQ(int64_t(order.size()), 2 * items);
  std::set<std::string> first(order.begin(), order.begin() + items);
  EXPECT_EQ(int64_t(first.size()), items);
  EXPECT_EQ(store.runs(dev, "float32", "eager").size(), 4u);
  {
    Db db(dir / "lut.db", false);
    Stmt counts(db, "SELECT MIN(count), MAX(count), COUNT(*) FROM lut_entry_rounds");
    ASSERT_TRUE(counts.step());
    EXPECT_EQ(counts.int64(0), 3);  // the session's rule, not m.timing's 2 samples
    EXPECT_EQ(counts.int64(1), 3);
    EXPECT_EQ(counts.int64(2), 2 * int64_t(entries.size()));
  }
  for (const auto& [k, rs] : store.all_rounds(dev, "float32", "eager")) {
    ASSERT_EQ(rs.size(), 2u) << k.describe();
    EXPECT_GT(rs[0].probe.index(), 0);
    EXPECT_GT(rs[0].at_s, 1.6e9);
  }
  // Everything stored: a rerun measures nothing.
  const SessionReport again = run_session(entries, runs, store, dev, m, so, nullptr);
  EXPECT_EQ(again.measured, 0);
  EXPECT_EQ(again.skipped, 2 * items);
  // More rounds: only the new round is measured.
  so.rounds = 3;
  so.run_rounds = 3;
  EXPECT_EQ(run_session(entries, runs, store, dev, m, so, nullptr).measured, items);
  // Two more rounds for the whole-model runs only.
  so.run_rounds = 5;
  EXPECT_EQ(run_session(entries, runs, store, dev, m, so, nullptr).measured, 4);
}

TEST(Machine, CacheSizesProbeSizeAndRotatingCopies) {
  const CpuCaches c = read_cpu_caches();
  EXPECT_FALSE(c.source.empty());
  if (c.source != "unknown") {
    EXPECT_GT(std::max(c.l2, c.l3), 0);
  }
  EXPECT_EQ(rotation_bytes(CpuCaches{0, 1 << 20, 32 << 20, "t"}, 2), int64_t(4) << 20);  // twice the L2 of 2 cores
  EXPECT_EQ(rotation_bytes(CpuCaches{0, 0, 32 << 20, "t"}, 2), int64_t(16) << 20);       // half the L3
  EXPECT_EQ(rotation_bytes(CpuCaches{0, 0, 0, "unknown"}, 2), int64_t(8) << 20);
  EXPECT_EQ(probe_memory_bytes(CpuCaches{0, 1 << 20, 32 << 20, "t"}), int64_t(64) << 20);
  EXPECT_EQ(probe_memory_bytes(CpuCaches{0, 1 << 20, 0, "t"}), int64_t(8) << 20);
  EXPECT_EQ(probe_memory_bytes(CpuCaches{0, 0, int64_t(1) << 30, "t"}), int64_t(256) << 20);
  MachineProbe probe(torch::kCPU, 1 << 20);
  const ProbeReading r = probe.read();
  EXPECT_GT(r.compute_us, 0);
  EXPECT_GT(r.memory_us, 0);
  EXPECT_NEAR(r.index(), std::sqrt(r.compute_us * r.memory_us), 1e-9);
}

TEST(Judge, CallsOutADifferenceBeyondTheValidatedErrorWithItsCause) {
  LutTable t("float32", "eager");
  const Workload w = Workload::parse("prompt=8,generate=4");
  t.report = {{"probe", {{"reference_index_us", 100.0}}},
              {"validation", json::array({{{"workload", w.str()}, {"worst_abs_error", 0.12}}})}};
  // Within the validated error: nothing to say.
  Judgement j = judge(10.0, 10.8, t, w, ProbeReading{100, 100});
  EXPECT_FALSE(j.beyond);
  EXPECT_DOUBLE_EQ(j.validated, 0.12);
  EXPECT_TRUE(j.note.empty());
  // The machine runs 2x slower than when profiled: that is the cause, and the
  // prediction at today's speed is given.
  j = judge(10.0, 20.5, t, w, ProbeReading{200, 200});
  EXPECT_TRUE(j.beyond);
  EXPECT_NEAR(j.speed_ratio, 2.0, 1e-12);
  EXPECT_NEAR(j.predicted_now_ms, 20.0, 1e-12);
  EXPECT_NE(j.note.find("measured 20.50 ms, predicted 10.00 ms (-51%)"), std::string::npos) << j.note;
  EXPECT_NE(j.note.find("runs 2.00x slower than when the table was profiled"), std::string::npos) << j.note;
  // Same speed as profiled: the architecture is the suspect (or the load).
  j = judge(10.0, 20.5, t, w, ProbeReading{100, 100});
  EXPECT_TRUE(j.beyond);
  EXPECT_TRUE(j.note.find("outside what the table was validated on") != std::string::npos ||
              j.note.find("other processes compete") != std::string::npos)
      << j.note;
}

TEST(ProfileSpace, OutsideArchitecturesAreDeeperOneMixerOrFfnHeavy) {
  const json space = {{"kind", "staged"},
                      {"widths", {32, 64}},
                      {"width", "gene"},
                      {"mixers", {"swa", "mamba2"}},
                      {"ffn_per_mixer", {0, 1}},
                      {"blocks_per_stage", {1, 2}},
                      {"max_operators", 6},
                      {"ops", {{"swa", {{"n_heads", 2}, {"window", 8}}}, {"mamba2", {{"head_dim", 16}}}, {"ffn", {{"d_ff", 64}}}}}};
  const SearchSpace sp = SearchSpace::from_json(space, json(), "t.toml");
  const auto out = outside_archs(sp, 6, 7);
  ASSERT_GE(out.size(), 5u);
  int deep = 0, mono = 0, heavy = 0;
  for (const auto& [label, a] : out) {
    if (label.rfind("deep-", 0) == 0) {
      ++deep;
      EXPECT_EQ(a.layers.size(), 12u) << "twice the operator cap";
    } else if (label.rfind("mono-", 0) == 0) {
      ++mono;
      std::set<std::string> mixers;
      for (const auto& l : a.layers) {
        if (l.type != "ffn") mixers.insert(l.type);
      }
      EXPECT_EQ(mixers.size(), 1u) << label;
    } else {
      ++heavy;
      int ffn = 0, mix = 0;
      for (const auto& l : a.layers) (l.type == "ffn" ? ffn : mix)++;
      EXPECT_EQ(ffn, 2 * mix) << "the space's largest FFN count, doubled: " << label;
    }
  }
  EXPECT_GT(deep, 0);
  EXPECT_GT(mono, 0);
  EXPECT_GT(heavy, 0);
}

}  // namespace
}  // namespace flashnas
