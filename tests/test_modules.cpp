// First pieces of profiler/, train/ and search/: timing statistics, the
// weight normalization, and Pareto fronts with hypervolume.
#include <gtest/gtest.h>

#include <thread>

#include "profiler/timing.h"
#include "search/pareto.h"
#include "supernet/hybrid_lm.h"
#include "tests/test_util.h"
#include "train/weight_norm.h"

namespace flashnas {
namespace {

TEST(Timing, SummaryStatistics) {
  const TimingStats s = summarize({5, 1, 4, 2, 3, 10, 6, 8, 7, 9, 11});
  EXPECT_EQ(s.count, 11);
  EXPECT_DOUBLE_EQ(s.median_us, 6);
  EXPECT_DOUBLE_EQ(s.p10_us, 2);  // position 0.1 * 10 = 1 -> second smallest
  EXPECT_DOUBLE_EQ(s.p90_us, 10);
  EXPECT_DOUBLE_EQ(s.mean_us, 6);
  EXPECT_DOUBLE_EQ(s.min_us, 1);
  EXPECT_NEAR(s.cv, std::sqrt(11.0) / 6.0, 1e-12);  // sample variance of 1..11 is 11
  EXPECT_EQ(s.samples_us.front(), 5);               // raw order kept
  EXPECT_DOUBLE_EQ(summarize({1, 2}).median_us, 1.5);
  EXPECT_THROW(summarize({}), std::exception);
}

TEST(Timing, MeasureHonoursCountAndTime) {
  int calls = 0;
  TimingOptions o;
  o.warmup = 2;
  o.min_count = 7;
  o.min_seconds = 0;
  const TimingStats s = measure([&] { ++calls; }, o);
  EXPECT_EQ(s.count, 7);
  EXPECT_EQ(calls, 9);
  // The time rule, on an injected clock (never the scheduler's): each call
  // takes exactly 2 ms, so 20 ms of timed calls are 10 samples.
  double clock_us = 0;
  o.now_us = [&] { return clock_us; };
  o.min_count = 1;
  o.min_seconds = 0.02;
  const TimingStats t = measure([&] { clock_us += 2000; }, o);
  EXPECT_EQ(t.count, 10);
  EXPECT_DOUBLE_EQ(t.median_us, 2000);
  // The cap: max_seconds stops sampling once min_count is reached.
  o.min_seconds = 10;
  o.max_seconds = 0.01;
  o.min_count = 3;
  EXPECT_EQ(measure([&] { clock_us += 2000; }, o).count, 5);
  o.max_seconds = 0.001;
  EXPECT_EQ(measure([&] { clock_us += 2000; }, o).count, 3) << "min_count holds under the cap";
}

TEST(WeightNorm, ReadersGetUnitRowsWritersUnitColumnsRestUntouched) {
  torch::manual_seed(3);
  const ArchSpec spec = ArchSpec::parse(R"({"d_model": 32, "n_meta_tokens": 2, "layers": [
      {"type": "attn", "n_heads": 4, "n_kv_heads": 2}, {"type": "ffn", "d_ff": 48}]})", "t");
  HybridLM model(spec);
  const WeightNormPlan plan = weight_norm_plan(*model);
  EXPECT_EQ(plan.row_names, (std::vector<std::string>{"layers.0.attn.q_proj.weight", "layers.0.attn.k_proj.weight",
                                                      "layers.0.attn.v_proj.weight", "layers.1.ffn.gate_proj.weight",
                                                      "layers.1.ffn.up_proj.weight"}));
  EXPECT_EQ(plan.col_names,
            (std::vector<std::string>{"layers.0.attn.o_proj.weight", "layers.1.ffn.down_proj.weight"}));
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().clone();
  apply_weight_norm(plan);
  const auto params = model->named_parameters();
  for (const auto& n : plan.row_names) {
    const auto norms = params[n].norm(2, 1);
    EXPECT_LE((norms - 1).abs().max().item<double>(), 1e-6) << n;
    EXPECT_EQ(params[n].size(1), 32) << n;  // rows run along d_model
  }
  for (const auto& n : plan.col_names) {
    EXPECT_LE((params[n].norm(2, 0) - 1).abs().max().item<double>(), 1e-6) << n;
    EXPECT_EQ(params[n].size(0), 32) << n;
  }
  for (const auto& [name, t] : before) {
    const bool planned = std::count(plan.row_names.begin(), plan.row_names.end(), name) ||
                         std::count(plan.col_names.begin(), plan.col_names.end(), name);
    if (!planned) EXPECT_TRUE(torch::equal(params[name], t)) << name << " changed";
    else EXPECT_FALSE(torch::equal(params[name], t)) << name << " not normalised";
  }
}

TEST(Pareto, FrontAndHypervolume) {
  const std::vector<ParetoPoint> pts = {{1, 5, 0}, {2, 3, 1}, {3, 4, 2}, {4, 1, 3}, {2, 3, 4}, {5, 0.5, 5}};
  const auto front = pareto_front(pts);
  std::vector<int64_t> ids;
  for (const auto& p : front) ids.push_back(p.id);
  EXPECT_EQ(ids, (std::vector<int64_t>{0, 1, 3, 5}));  // (3,4) dominated by (2,3); duplicate (2,3) keeps id 1
  EXPECT_TRUE(dominates({2, 3, 0}, {3, 4, 0}));
  EXPECT_FALSE(dominates({2, 3, 0}, {2, 3, 0}));
  // Reference (6, 6): strips [1,2)x(6-5) + [2,4)x(6-3) + [4,5)x(6-1) + [5,6)x(6-0.5) = 1 + 6 + 5 + 5.5.
  EXPECT_DOUBLE_EQ(hypervolume(pts, 6, 6), 17.5);
  // Points outside the reference box count for nothing.
  EXPECT_DOUBLE_EQ(hypervolume({{7, 1, 0}}, 6, 6), 0.0);
}

}  // namespace
}  // namespace flashnas
