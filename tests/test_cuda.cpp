// CUDA against the CPU reference (ggml test-backend-ops style): every
// operator's parallel forward and decode step, and the whole model's prefill
// and decode, on cuda:0 in float32 and bfloat16, compared with the same
// module on the CPU in float32. Skipped (not failed) where no GPU is visible:
// on the development machine, and in CPU-only builds.
//
// Tolerances, relative to the reference's largest magnitude:
//   float32 1e-4: TF32 is off in LibTorch by default for matmuls; what remains
//     is summation order in cuBLAS and reductions, ~1e-6, with margin for the
//     chunked scans that accumulate over 37 steps.
//   bfloat16 3e-2: 8 mantissa bits give ~4e-3 per rounding; a few roundings
//     in series (projection, mixer, output projection) with norms, softmax,
//     scans and states kept in float32.
#include <gtest/gtest.h>

#include "common/device.h"
#include "profiler/measure.h"
#include "profiler/predict.h"
#include "supernet/hybrid_lm.h"
#include "supernet/registry.h"
#include "tests/test_util.h"
#ifdef FLASHNAS_WITH_CUDA
#include <torch/cuda.h>

#include "profiler/cuda_timing.h"
#endif

namespace flashnas {
namespace {

using test::max_rel_diff;

struct OpCase {
  std::string type;
  json hp;
};

std::vector<OpCase> op_cases() {
  return {{"attn", {{"n_heads", 4}, {"n_kv_heads", 2}}},
          {"swa", {{"n_heads", 4}, {"n_kv_heads", 2}, {"window", 16}}},
          {"mamba2", {{"head_dim", 16}, {"d_state", 16}, {"chunk_size", 16}}},
          {"deltanet", {{"n_heads", 4}, {"chunk_size", 16}}},
          {"gdn", {{"n_heads", 2}, {"head_k_dim", 32}, {"head_v_dim", 32}, {"chunk_size", 16}}},
          {"ffn", {{"d_ff", 192}}}};
}

constexpr int64_t kD = 64;

double tolerance(torch::ScalarType dt) { return dt == torch::kBFloat16 ? 3e-2 : 1e-4; }

class CudaOp : public ::testing::TestWithParam<std::tuple<int, torch::ScalarType>> {};

TEST_P(CudaOp, ForwardAndStepMatchTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible (or a CPU-only build)";
  const auto [idx, dt] = GetParam();
  const OpCase c = op_cases()[size_t(idx)];
  torch::manual_seed(idx);
  json layer = c.hp;
  layer["type"] = c.type;
  const LayerSpec l = ArchSpec::parse_layer(layer, kD, "test", c.type);
  auto cpu = make_operator(l.type, l.hp, kD);
  auto gpu = make_operator(l.type, l.hp, kD);
  {
    torch::NoGradGuard g;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const torch::Device cuda("cuda:0");
  gpu->to(cuda, dt);
  torch::NoGradGuard no_grad;
  const int64_t B = 2, T = 37;  // not a multiple of the chunk
  auto x = torch::randn({B, T, kD});
  OpState sc = cpu->init_state(B, T + 4, torch::kFloat32);
  OpState sg = gpu->init_state(B, T + 4, dt);
  auto yc = cpu->forward(x, &sc);
  auto yg = gpu->forward(x.to(cuda, dt), &sg);
  EXPECT_LE(max_rel_diff(yg.to(torch::kCPU, torch::kFloat32), yc), tolerance(dt)) << c.type << " forward";
  for (int64_t t = 0; t < 4; ++t) {
    auto xs = torch::randn({B, kD});
    auto zc = cpu->step(xs, sc);
    auto zg = gpu->step(xs.to(cuda, dt), sg);
    EXPECT_LE(max_rel_diff(zg.to(torch::kCPU, torch::kFloat32), zc), tolerance(dt)) << c.type << " step " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, CudaOp,
                         ::testing::Combine(::testing::Range(0, 6), ::testing::Values(torch::kFloat32, torch::kBFloat16)),
                         [](const auto& info) {
                           return op_cases()[size_t(std::get<0>(info.param))].type +
                                  (std::get<1>(info.param) == torch::kBFloat16 ? "_bf16" : "_f32");
                         });

TEST(CudaModel, PrefillAndDecodeMatchTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible (or a CPU-only build)";
  const ArchSpec spec = ArchSpec::load(std::string(FLASHNAS_SOURCE_DIR) + "/configs/arch/demo-hybrid.json");
  torch::manual_seed(3);
  HybridLM cpu(spec), gpu(spec);
  {
    torch::NoGradGuard g;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  const torch::Device cuda("cuda:0");
  gpu->to(cuda);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, spec.vocab_size, {2, 29}, torch::kLong);
  auto [lc, cc] = cpu->prefill(tokens, 40);
  auto [lg, cg] = gpu->prefill(tokens.to(cuda), 40);
  EXPECT_LE(max_rel_diff(lg.cpu(), lc), 1e-4);
  auto tok = lc.select(1, lc.size(1) - 1).argmax(-1);
  for (int i = 0; i < 6; ++i) {
    auto sc = cpu->step(tok, cc);
    auto sg = gpu->step(tok.to(cuda), cg);
    EXPECT_LE(max_rel_diff(sg.cpu(), sc), 1e-4) << "decode step " << i;
    tok = sc.argmax(-1);
  }
}

// A model with every operator, for the CUDA-graph tests.
ArchSpec every_op_spec() {
  json layers = json::array();
  for (const auto& c : op_cases()) {
    json l = c.hp;
    l["type"] = c.type;
    layers.push_back(l);
  }
  return ArchSpec::from_json(json{{"d_model", kD}, {"vocab_size", 97}, {"tie_embeddings", true}, {"layers", layers}},
                             "every-op test spec");
}

#ifdef FLASHNAS_WITH_CUDA
// The decode replayed from CUDA graphs computes what the eager decode does:
// each graph reads the state the previous one wrote, at its own position.
TEST(CudaGraph, ReplayedDecodeStepsEqualTheEagerOnesForEveryOperator) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible";
  torch::manual_seed(5);
  HybridLM model(every_op_spec());
  const torch::Device cuda("cuda:0");
  model->to(cuda);
  c10::InferenceMode inference;
  const int64_t B = 2, P = 21, G = 7;
  auto prompt = torch::randint(0, 97, {B, P}, torch::TensorOptions().dtype(torch::kLong).device(cuda));
  ModelCache ec = model->init_cache(B, P + G, torch::kFloat32);
  auto token = model->extend(prompt, ec).select(1, P - 1).argmax(-1);
  std::vector<torch::Tensor> eager;
  for (int64_t g = 0; g < G; ++g) {
    eager.push_back(model->step(token, ec));
    token = eager.back().argmax(-1);
  }
  ModelCache gc = model->init_cache(B, P + G, torch::kFloat32);
  auto tok = model->extend(prompt, gc).select(1, P - 1).argmax(-1);
  auto logits = torch::zeros({G, B, 97}, torch::TensorOptions().device(cuda));
  // The eager warm-up advances the state; start each capture from a copy of
  // the positions before it, as bench_workload does.
  DecodeGraphs graphs(G, [&](int64_t g, bool capture) {
    if (!capture) {
      ModelCache scratch = gc;
      std::vector<OpState> copies;
      for (auto& l : scratch.layers) copies.push_back(clone_state(l));
      scratch.layers = copies;
      model->step(tok.clone(), scratch);
      return;
    }
    logits[g].copy_(model->step(tok, gc));
    tok.copy_(logits[g].argmax(-1));
  });
  // Nothing ran yet in the graphs: the logits are still zero.
  torch::cuda::synchronize();
  EXPECT_EQ(logits.abs().max().item<float>(), 0.0f);
  graphs.replay();
  torch::cuda::synchronize();
  for (int64_t g = 0; g < G; ++g) {
    EXPECT_LE(max_rel_diff(logits[g].cpu(), eager[size_t(g)].cpu()), 1e-5) << "decode step " << g;
  }
}

// bench_workload's cudagraph runtime times prefill and decode apart, with or
// without a prompt; LUT entries of every operator are timed from graphs too.
TEST(CudaGraph, BenchAndEntriesRunInTheCudaGraphRuntime) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible";
  MeasureOptions m;
  m.device = torch::Device("cuda:0");
  m.runtime = "cudagraph";
  m.timing.warmup = 1;
  m.timing.min_count = 3;
  m.timing.min_seconds = 0;
  m.timing.sync = [] { torch::cuda::synchronize(); };
  m.attempts = 1;
  const ArchSpec spec = every_op_spec();
  for (const char* w : {"batch=2,prompt=16,generate=5", "batch=1,prompt=0,generate=4"}) {
    const BenchResult r = bench_workload(spec, Workload::parse(w), m);
    EXPECT_GE(r.total.count, 3) << w;
    EXPECT_GT(r.decode.median_us, 0) << w;
    EXPECT_NEAR(r.total.median_us, r.prefill.median_us + r.decode.median_us, 0.5 * r.total.median_us) << w;
  }
  for (const auto& l : spec.layers) {
    for (Phase ph : {Phase::Prefill, Phase::Decode}) {
      const LutKey k = sublayer_key(l, kD, ph, 2, 16, "float32", "cudagraph");
      const TimingStats s = measure_entry(k, m);
      EXPECT_GT(s.median_us, 0) << k.describe();
    }
  }
}
#endif

}  // namespace
}  // namespace flashnas
