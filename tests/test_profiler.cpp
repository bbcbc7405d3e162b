// profiler/: workloads, the entry plan, prediction on a synthetic LUT
// (sums, interpolation, missing entries), fingerprints, schema versions,
// resumable profiling and an interrupted run's database.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <csignal>
#include <random>
#include <set>

#include "common/error.h"
#include "profiler/latency_model.h"
#include "profiler/lut_table.h"
#include "profiler/lut.h"
#include "profiler/measure.h"
#include "profiler/predict.h"
#include "profiler/validate.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::run_cli;
using test::TempDir;
const auto& input_error = test::input_error_of;
const auto& any_error = test::error_of;


TEST(Workload, ParsesAndRejects) {
  const Workload w = Workload::parse("batch=2,prompt=512,generate=128");
  EXPECT_EQ(w.batch, 2);
  EXPECT_EQ(w.prompt, 512);
  EXPECT_EQ(w.generate, 128);
  EXPECT_EQ(Workload::parse(w.str()).str(), w.str());
  EXPECT_EQ(Workload::parse("generate=8192").batch, 1);
  EXPECT_EQ(input_error([] { Workload::parse("batch=1,promt=5"); }),
            "--workload \"batch=1,promt=5\": unknown key \"promt\"; allowed: batch, prompt, generate");
  EXPECT_NE(input_error([] { Workload::parse("prompt=abc"); }).find("prompt must be an integer"), std::string::npos);
  EXPECT_NE(input_error([] { Workload::parse("batch=0,prompt=4"); }).find("batch must be positive"), std::string::npos);
}

ArchSpec small_arch(int64_t meta = 0) {
  return ArchSpec::from_json(json{{"d_model", 32},
                                  {"n_meta_tokens", meta},
                                  {"layers",
                                   {{{"type", "attn"}, {"n_heads", 4}},
                                    {{"type", "ffn"}, {"d_ff", 64}},
                                    {{"type", "attn"}, {"n_heads", 4}},
                                    {{"type", "mamba2"}, {"head_dim", 16}, {"d_state", 8}}}}},
                             "small");
}

TEST(Plan, CoversEveryOperatorPhaseAndContextRange) {
  const auto plan = plan_entries({small_arch(2)}, {Workload::parse("prompt=10,generate=20")}, "float32", "eager");
  std::set<std::string> ops;
  int64_t lo = 1 << 30, hi = 0, prefills = 0;
  for (const auto& k : plan) {
    ops.insert(k.op);
    if (k.phase == Phase::Prefill) {
      EXPECT_EQ(k.length, 12);  // prompt + meta tokens
      ++prefills;
    } else {
      lo = std::min(lo, k.length);
      hi = std::max(hi, k.length);
    }
  }
  EXPECT_EQ(ops, (std::set<std::string>{"attn", "ffn", "mamba2", "embed_head"}));
  EXPECT_EQ(prefills, 4);  // the two identical attn layers share entries
  EXPECT_EQ(lo, 12);
  EXPECT_EQ(hi, 31);  // the last generated position's context
}

DeviceInfo fake_device(const std::string& name) {
  DeviceInfo d;
  d.device = "cpu";
  d.name = name;
  d.threads = 1;
  d.torch_version = "2.11.0";
  d.build_type = "Release";
  return d;
}

TimingStats stats(double us) { return summarize({us}); }

TEST(Predict, SumsEntriesAndInterpolatesContexts) {
  TempDir dir;
  LutStore lut(dir / "lut.db", true);
  const int64_t dev = lut.add_device(fake_device("synthetic"));
  const ArchSpec a = ArchSpec::from_json(
      json{{"d_model", 32}, {"layers", {{{"type", "attn"}, {"n_heads", 4}}, {{"type", "ffn"}, {"d_ff", 64}}}}}, "a");
  const Workload w = Workload::parse("prompt=10,generate=11");  // decode contexts 10..20
  // attn: prefill 1000 us; decode 100 + 2t us, stored only at t = 10, 16, 20 (linear, so
  // interpolation is exact). ffn: prefill 500, decode 50 at 10 and 20. ends: 5 and 1.
  auto put = [&](const LutKey& base, Phase ph, int64_t len, double us) {
    LutKey k = base;
    k.phase = ph;
    k.length = len;
    lut.put(dev, k, stats(us), 1);
  };
  const LutKey attn = sublayer_key(a.layers[0], 32, Phase::Decode, 1, 0, "float32", "eager");
  const LutKey ffn = sublayer_key(a.layers[1], 32, Phase::Decode, 1, 0, "float32", "eager");
  const LutKey ends = ends_key(a, Phase::Decode, 1, 0, "float32", "eager");
  put(attn, Phase::Prefill, 10, 1000);
  for (int64_t t : {10, 16, 20}) put(attn, Phase::Decode, t, 100 + 2.0 * t);
  put(ffn, Phase::Prefill, 10, 500);
  put(ffn, Phase::Decode, 10, 50);
  put(ffn, Phase::Decode, 20, 50);
  put(ends, Phase::Prefill, 10, 5);
  put(ends, Phase::Decode, 10, 1);
  put(ends, Phase::Decode, 20, 1);
  const Prediction p = predict(a, w, lut, dev, "float32", "eager");
  double attn_decode = 0;
  for (int64_t t = 10; t <= 20; ++t) attn_decode += 100 + 2.0 * t;
  EXPECT_NEAR(p.raw_prefill_ms, (1000 + 500 + 5) / 1e3, 1e-12);
  EXPECT_NEAR(p.raw_decode_ms, (attn_decode + 11 * 50 + 11 * 1) / 1e3, 1e-9);
  EXPECT_NEAR(p.total_ms, p.raw_prefill_ms + p.raw_decode_ms, 1e-12);
  EXPECT_TRUE(p.model.is_null()) << "no latency model: the plain sum";
  // The sums per (operator, d_model, phase) group, as the latency model sees them.
  EXPECT_NEAR(p.row.groups.at("attn|32|decode"), attn_decode / 1e3, 1e-9);
  EXPECT_NEAR(p.row.groups.at("embed_head|32|prefill"), 5 / 1e3, 1e-12);
  EXPECT_EQ(p.row.layers, 2);
  EXPECT_EQ(p.row.steps, 11);
  EXPECT_NEAR(p.layer_ms[0], (1000 + attn_decode) / 1e3, 1e-9);
  ASSERT_EQ(p.interpolated.size(), 3u);  // attn, ffn and the ends' decode sums
  EXPECT_NE(p.interpolated[0].find("8 of 11 contexts interpolated"), std::string::npos) << p.interpolated[0];
  // A context past the grid, and an operator with no entries, are errors naming the entry.
  EXPECT_NE(any_error([&] { predict(a, Workload::parse("prompt=10,generate=12"), lut, dev, "float32", "eager"); })
                .find("needs decode lengths 10..21, the table covers 10..20"),
            std::string::npos);
  const ArchSpec b = ArchSpec::from_json(json{{"d_model", 32}, {"layers", {{{"type", "ffn"}, {"d_ff", 96}}}}}, "b");
  EXPECT_NE(any_error([&] { predict(b, w, lut, dev, "float32", "eager"); })
                .find("missing LUT entry: ffn {\"d_ff\":96} d=32 prefill"),
            std::string::npos);
}

TEST(LutStoreTest, RoundsKeepTheFastestMedianAndCountUp) {
  TempDir dir;
  LutStore lut(dir / "lut.db", true);
  const int64_t dev = lut.add_device(fake_device("synthetic"));
  const LutKey k = ends_key(small_arch(), Phase::Decode, 1, 7, "float32", "eager");
  lut.put(dev, k, stats(30), 1);
  lut.put(dev, k, stats(20), 1);  // faster: replaces
  lut.put(dev, k, stats(25), 1);  // slower: only counted
  const auto v = lut.get(dev, k);
  ASSERT_TRUE(v);
  EXPECT_DOUBLE_EQ(v->median_us, 20);
  EXPECT_EQ(v->rounds, 3);
}

TEST(Predict, TheTablesLatencyModelAppliesPerBatchAndSaysSo) {
  TempDir dir;
  LutStore lut(dir / "lut.db", true);
  const int64_t dev = lut.add_device(fake_device("synthetic"));
  const ArchSpec a = ArchSpec::from_json(json{{"d_model", 32}, {"layers", {{{"type", "ffn"}, {"d_ff", 64}}}}}, "a");
  const Workload w = Workload::parse("batch=2,prompt=4,generate=2");
  for (const LutKey& base : {sublayer_key(a.layers[0], 32, Phase::Decode, 2, 0, "float32", "eager"),
                             ends_key(a, Phase::Decode, 2, 0, "float32", "eager")}) {
    LutKey k = base;
    k.phase = Phase::Prefill;
    k.length = 4;
    lut.put(dev, k, stats(100), 1);
    k.phase = Phase::Decode;
    for (int64_t t : {4, 5}) {
      k.length = t;
      lut.put(dev, k, stats(10), 1);
    }
  }
  LutTable table = LutTable::load(lut, dev, "float32", "eager");
  const Prediction raw = predict(a, w, table);
  EXPECT_TRUE(raw.model.is_null());
  EXPECT_NEAR(raw.total_ms, (200 + 40) / 1e3, 1e-12);
  // Batch 1's model does not apply to batch 2.
  LatencyModel scale;
  scale.kind = "scale";
  scale.prefill_scale = 3;
  scale.decode_scale = 3;
  table.set_model(1, scale);
  EXPECT_TRUE(predict(a, w, table).model.is_null());
  scale.prefill_scale = 1.5;
  scale.decode_scale = 2.0;
  table.set_model(2, scale);
  const Prediction p = predict(a, w, table);
  EXPECT_NEAR(p.total_ms, 1.5 * 0.2 + 2.0 * 0.04, 1e-12);
  EXPECT_EQ(p.model["kind"], "scale");
  EXPECT_NEAR(p.raw_prefill_ms + p.raw_decode_ms, raw.total_ms, 1e-12);
  EXPECT_NEAR(predict(a, w, table, /*use_model=*/false).total_ms, raw.total_ms, 1e-12);
  // nnls: per-group coefficients and per-sublayer overheads.
  LatencyModel nn;
  nn.kind = "nnls";
  nn.coef = {{"ffn|32|prefill", 2.0}, {"ffn|32|decode", 1.0}};
  nn.prefill_scale = 1.0;  // groups without a coefficient (the ends) use the phase scale
  nn.decode_scale = 0.5;
  nn.prefill_layer_ms = 0.01;
  nn.decode_layer_step_ms = 0.001;
  table.set_model(2, nn);
  EXPECT_NEAR(predict(a, w, table).total_ms, 2.0 * 0.1 + 1.0 * 0.02 + 0.1 + 0.5 * 0.02 + 0.01 + 0.001 * 2, 1e-12);
  // A model survives its JSON form.
  const LatencyModel back = LatencyModel::from_json(nn.to_json(), "t");
  EXPECT_NEAR(back.apply(p.row), nn.apply(p.row), 1e-12);
  EXPECT_NE(input_error([] { LatencyModel::from_json(json{{"kind", "cubic"}}, "report"); })
                .find("report: unknown latency model kind \"cubic\" (sum, scale, nnls)"),
            std::string::npos);
}

// Synthetic whole-model runs: groups g0..g3 whose true cost is coef_g times
// their entry sum, plus a per-layer decode overhead.
std::vector<FitRow> synthetic_rows(int n, uint64_t seed, const std::vector<double>& coef, double noise) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.5, 2.0);
  std::normal_distribution<double> e(0.0, noise);
  std::vector<FitRow> rows;
  for (int i = 0; i < n; ++i) {
    FitRow r;
    r.arch = "a" + std::to_string(i);
    r.layers = 2 + i % 5;
    r.steps = 4 + (i * 3) % 7;
    r.prefill = true;
    double truth = 0.02 * double(r.layers * r.steps);
    for (size_t g = 0; g < coef.size(); ++g) {
      if ((i + int(g)) % 3 == 0) continue;  // not every architecture has every group
      const std::string key = "op" + std::to_string(g) + "|64|" + (g % 2 ? "decode" : "prefill");
      r.groups[key] = u(rng);
      (g % 2 ? r.decode_raw_ms : r.prefill_raw_ms) += r.groups[key];
      truth += coef[g] * r.groups[key];
    }
    r.measured_ms = truth * (1 + e(rng));
    rows.push_back(r);
  }
  return rows;
}

TEST(LatencyModelTest, ScaleAndNnlsRecoverKnownCostsAndCrossValidationPicksTheBetter) {
  // One common scale: the scale fit finds it exactly.
  {
    auto rows = synthetic_rows(30, 1, {1.3, 1.3, 1.3, 1.3}, 0.0);
    for (auto& r : rows) r.measured_ms = 1.3 * (r.prefill_raw_ms + r.decode_raw_ms);
    const LatencyModel m = fit_scale(rows);
    EXPECT_NEAR(m.prefill_scale, 1.3, 1e-9);
    EXPECT_NEAR(m.decode_scale, 1.3, 1e-9);
  }
  // Different costs per group: nnls recovers them (weak ridge) and the
  // cross-validation prefers it to one scale per phase.
  const std::vector<double> coef = {0.8, 1.6, 2.4, 0.9};
  const auto rows = synthetic_rows(60, 2, coef, 0.0);
  const LatencyModel nn = fit_nnls(rows, 1e-6, 0.0, 0.0);
  for (size_t g = 0; g < coef.size(); ++g) {
    EXPECT_NEAR(nn.coef.at("op" + std::to_string(g) + "|64|" + (g % 2 ? "decode" : "prefill")), coef[g], 1e-3) << g;
  }
  EXPECT_NEAR(nn.decode_layer_step_ms, 0.02, 1e-4);
  EXPECT_NEAR(nn.prefill_layer_ms, 0.0, 1e-4);
  const ModelChoice c = choose_model(synthetic_rows(60, 3, coef, 0.01), 0.0);
  EXPECT_EQ(c.best, "nnls");
  EXPECT_LT(c.models.at("nnls").cv_error, 0.5 * c.models.at("scale").cv_error);
  // Coefficients never go negative, even where least squares would.
  auto neg = synthetic_rows(40, 4, {0.0, 1.0, 1.0, 1.0}, 0.05);
  for (const auto& [g, v] : fit_nnls(neg, 0.003, 0.0, 0.0).coef) EXPECT_GE(v, 0.0) << g;
}

TEST(LatencyModelTest, CrossValidationFindsWhereLargeModelsStartToPayForTheirWeights) {
  // Entries timed with a 2 MB footprint; on this "machine" decode steps only
  // slow down for weights beyond 6 MB (3x the footprint), by 0.05 ms per MB
  // and step. A knee fixed at the footprint would overcharge every model
  // between 2 and 6 MB.
  const double footprint = 2.0, knee = 6.0, cost = 0.05;
  auto rows = synthetic_rows(80, 5, {1.0, 1.2, 0.9, 1.1}, 0.003);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].weight_mb = 0.5 + double((i * 37) % 80) * 0.25;  // 0.5 .. 20.25 MB
    rows[i].measured_ms += cost * double(rows[i].steps) * std::max(0.0, rows[i].weight_mb - knee);
  }
  const ModelChoice c = choose_model(rows, footprint);
  ASSERT_EQ(c.best, "nnls");
  const LatencyModel& nn = c.models.at("nnls");
  EXPECT_DOUBLE_EQ(nn.knee_mb, knee);
  EXPECT_DOUBLE_EQ(nn.cache_mb, footprint);
  EXPECT_NEAR(nn.excess_ms_per_mb_step, cost, 0.005);
  // The knee travels with the table, and a table written before it existed
  // reads its knee as the footprint.
  const LatencyModel back = LatencyModel::from_json(nn.to_json(), "report");
  EXPECT_DOUBLE_EQ(back.knee_mb, knee);
  json old = nn.to_json();
  old.erase("knee_mb");
  EXPECT_DOUBLE_EQ(LatencyModel::from_json(old, "report").knee_mb, footprint);
  // The knee is the score's doing: fixed at the footprint, the same rows
  // cross-validate worse.
  const LatencyModel at_footprint = fit_nnls(rows, nn.lambda, footprint, footprint);
  double worst_fixed = 0, worst_chosen = 0;
  for (const auto& r : rows) {
    worst_fixed = std::max(worst_fixed, std::abs(at_footprint.apply(r) - r.measured_ms) / r.measured_ms);
    worst_chosen = std::max(worst_chosen, std::abs(nn.apply(r) - r.measured_ms) / r.measured_ms);
  }
  EXPECT_LT(worst_chosen, 0.5 * worst_fixed);
}

TEST(Validation, SpearmanAndSummary) {
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  // Ties take average ranks: x ranks 1, 2.5, 2.5, 4 against 1..4.
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 0.9486832980505138, 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  WorkloadValidation v;
  v.workload = Workload::parse("prompt=8,generate=8");
  for (auto [p, m] : std::vector<std::pair<double, double>>{{10, 10}, {10.4, 10}, {9.2, 10}, {13, 10}, {40, 50}}) {
    v.rows.push_back({"a", "h" + std::to_string(v.rows.size()), p, m});
  }
  summarize_validation(v);
  EXPECT_DOUBLE_EQ(v.within5, 0.4);   // errors 0, 4%
  EXPECT_DOUBLE_EQ(v.within10, 0.6);  // and 8%
  EXPECT_NEAR(v.median_abs_error, 0.08, 1e-12);
  EXPECT_NEAR(v.worst_abs_error, 0.3, 1e-12);
  // The spread between two runs of the same architectures.
  ValidationReport now;
  now.workloads.push_back(v);
  json before = now.to_json();
  before["workloads"][0]["rows"][0]["measured_ms"] = 11.5;  // 10 now: 13% apart
  const json sp = measurement_spread(now, before);
  ASSERT_EQ(sp.size(), 1u);
  EXPECT_EQ(sp[0]["n"].get<int>(), 5);
  EXPECT_DOUBLE_EQ(sp[0]["within_10pct"].get<double>(), 0.8);
}

TEST(ProfileCli, SpaceAndValidateFlagsAreChecked) {
  TempDir dir;
  auto r = run_cli({"profile", "--db", (dir / "x.db").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("give either --space CONFIG or --arch FILE"), std::string::npos) << r.err;
  dir.write("arch.json", small_arch().to_json().dump());
  r = run_cli({"profile", "--arch", (dir / "arch.json").string(), "--workload", "prompt=4,generate=4", "--db",
               (dir / "x.db").string(), "--validate", "3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--validate: needs --space"), std::string::npos) << r.err;
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"arch.json"}) << "nothing written";
}

TEST(LutStoreTest, FingerprintMismatchAndSchemaVersion) {
  TempDir dir;
  {
    LutStore lut(dir / "lut.db", true);
    lut.add_device(fake_device("machine A"));
    EXPECT_NE(input_error([&] { lut.require_device(fake_device("machine B")); })
                  .find("no latency table for this device (cpu|machine B|threads=1"),
              std::string::npos);
    EXPECT_NE(input_error([&] { lut.require_device(fake_device("machine B")); })
                  .find("it holds tables for: cpu|machine A"),
              std::string::npos);
    lut.db().exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  }
  EXPECT_NE(input_error([&] { LutStore again(dir / "lut.db", false); })
                .find("database schema version 99; this flashnas reads version 3"),
            std::string::npos);
  EXPECT_NE(input_error([&] { LutStore none(dir / "missing.db", false); }).find("missing.db: no such database"),
            std::string::npos);
}

MeasureOptions quick() {
  MeasureOptions m;
  m.timing.warmup = 1;
  m.timing.min_count = 3;
  m.timing.min_seconds = 0;
  m.attempts = 1;
  return m;
}

TEST(Profile, MeasuresEntriesResumesAndPredictsFromThem) {
  TempDir dir;
  LutStore lut(dir / "lut.db", true);
  const int64_t dev = lut.add_device(fake_device("this cpu"));
  const ArchSpec a = small_arch(1);
  const Workload w = Workload::parse("prompt=8,generate=6");
  const auto plan = plan_entries({a}, {w}, "float32", "eager");
  // Half first, then the rest: the second run skips what the first measured.
  const std::vector<LutKey> half(plan.begin(), plan.begin() + static_cast<long>(plan.size() / 2));
  const ProfileReport r1 = run_profile(half, lut, dev, quick(), 0, nullptr);
  EXPECT_EQ(r1.measured, static_cast<int64_t>(half.size()));
  const ProfileReport r2 = run_profile(plan, lut, dev, quick(), 0, nullptr);
  EXPECT_EQ(r2.skipped, static_cast<int64_t>(half.size()));
  EXPECT_EQ(r2.measured, static_cast<int64_t>(plan.size() - half.size()));
  EXPECT_EQ(lut.count(dev), static_cast<int64_t>(plan.size()));
  const Prediction p = predict(a, w, lut, dev, "float32", "eager");
  EXPECT_GT(p.raw_prefill_ms, 0);
  EXPECT_GT(p.raw_decode_ms, 0);
  const BenchResult b = bench_workload(a, w, quick());
  EXPECT_GT(b.total.median_us, 0);
  EXPECT_EQ(b.prefill.count, b.total.count);
}

// SIGTERM (raised after the third committed measurement by the test-only
// fault hook): profile stops before the next item, exits 143 saying how to
// resume, and the rerun keeps the three measurements.
TEST(Profile, SigtermStopsBetweenMeasurementsAndTheRerunResumes) {
  TempDir dir;
  dir.write("arch.json", small_arch().to_json().dump());
  const std::string db = (dir / "lut.db").string();
  const std::vector<std::string> args = {"profile", "--arch", (dir / "arch.json").string(), "--workload",
                                         "prompt=16,generate=40", "--db", db, "--threads", "1", "--rounds", "1",
                                         "--json"};
  setenv("FLASHNAS_FAULT", "term-profile-item:3", 1);
  auto r = run_cli(args);
  unsetenv("FLASHNAS_FAULT");
  EXPECT_EQ(r.exit_code, 143) << r.err;
  EXPECT_NE(r.err.find("profile: " + db + ": stopped after 3 measurements, every one committed; rerun the same "
                       "command to resume (stopped by SIGTERM)"),
            std::string::npos)
      << r.err;
  r = run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["skipped"].get<int>(), 3);
  EXPECT_EQ(j["entries"], j["entries_planned"]);
}

TEST(Profile, KilledRunLeavesASoundDatabaseAndResumes) {
  TempDir dir;
  dir.write("arch.json", small_arch().to_json().dump());
  const std::string db = (dir / "lut.db").string();
  const std::vector<std::string> args = {"profile", "--arch", (dir / "arch.json").string(), "--workload",
                                         "prompt=64,generate=300", "--workload", "prompt=16,generate=40",
                                         "--db", db, "--threads", "1", "--rounds", "1"};
  // Killed (SIGKILL, from inside: common/fault.h) right after its third
  // measurement was committed.
  std::string cmd = "FLASHNAS_FAULT=kill-profile-item:3 '" + std::string(test::flashnas_bin()) + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  const int status = std::system((cmd + " >/dev/null 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGKILL) << "the shell reports the child killed by SIGKILL";
  // The killed run committed whole entries only.
  {
    Db check(db, false);
    Stmt q(check, "PRAGMA integrity_check");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.text(0), "ok");
  }
  auto r = run_cli([&] {
    auto v = args;
    v.push_back("--json");
    return v;
  }());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["skipped"].get<int>(), 3) << "the three measurements committed before the kill are kept";
  EXPECT_GT(j["measured"].get<int>(), 0);
  EXPECT_EQ(j["skipped"].get<int>() + j["measured"].get<int>(), j["entries_planned"].get<int>());
  EXPECT_EQ(j["entries"], j["entries_planned"]);
  // Without held-out architectures the table is not validated, and says so.
  EXPECT_EQ(j["report"]["verdict"]["status"], "unreliable");
  EXPECT_NE(j["report"]["verdict"]["workloads"][0]["reasons"][0].get<std::string>().find("not validated"),
            std::string::npos);
  r = run_cli({"latency", "--db", db, "--arch", (dir / "arch.json").string(), "--workload", "prompt=64,generate=300",
               "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GT(json::parse(r.out)["total_ms"].get<double>(), 0);
  // Another thread count is another device fingerprint: refused, not silently reused.
  r = run_cli({"latency", "--db", db, "--arch", (dir / "arch.json").string(), "--workload", "prompt=64,generate=300",
               "--threads", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no latency table for this device"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flashnas
