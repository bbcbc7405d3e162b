// Decoding with positions on the device (profiler/graph_decode.h): the
// graph-safe step of every operator against the eager decode, on the CPU
// (eager replays of the same step) and on a GPU (CUDA graphs, one capture per
// batch size; skipped without one). Also the pieces it is made of (RoPE from
// device positions, attention under a device mask) against their references,
// and how the cudagraph runtime's table is planned and read.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/device.h"
#include "common/error.h"
#include "profiler/graph_decode.h"
#include "profiler/lut_table.h"
#include "profiler/measure.h"
#include "profiler/predict.h"
#include "supernet/hybrid_lm.h"
#include "supernet/ops/attention_core.h"
#include "supernet/ops/rope.h"
#include "supernet/registry.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::max_rel_diff;

constexpr int64_t kD = kOpTestDModel;
constexpr int64_t kVocab = 97;

// One layer of every registered operator's test cases (swa's window is 5, so
// a decode of a dozen tokens wraps its ring), and `meta` meta tokens.
ArchSpec every_op_spec(int64_t meta) {
  json layers = json::array();
  for (const auto& k : op_kinds()) {
    for (const auto& hp : k.testing.cases) {
      json l = hp;
      l["type"] = k.name;
      layers.push_back(l);
    }
  }
  return ArchSpec::from_json(json{{"d_model", kD},
                                  {"vocab_size", kVocab},
                                  {"tie_embeddings", true},
                                  {"n_meta_tokens", meta},
                                  {"layers", layers}},
                             "every-op test spec");
}

struct Setting {
  std::string device;
  torch::ScalarType dtype;
};
void PrintTo(const Setting& s, std::ostream* os) { *os << s.device << " " << c10::toString(s.dtype); }

class DeviceDecode : public ::testing::TestWithParam<Setting> {
 protected:
  void SetUp() override {
    if (GetParam().device != "cpu" && !cuda_available()) GTEST_SKIP() << "no CUDA device visible (or a CPU-only build)";
  }
  torch::Device device() const { return torch::Device(GetParam().device); }
  torch::ScalarType dtype() const { return GetParam().dtype; }
  bool graphs() const { return device().is_cuda(); }
  double tol() const { return dtype() == torch::kFloat64 ? 1e-10 : 1e-5; }

  HybridLM model(int64_t meta) const {
    torch::manual_seed(11);
    HybridLM m(every_op_spec(meta));
    m->to(device(), dtype());
    return m;
  }
  torch::Tensor tokens(int64_t B, int64_t T, int64_t seed) const {
    torch::manual_seed(seed);
    return torch::randint(0, kVocab, {B, T}, torch::TensorOptions().dtype(torch::kLong)).to(device());
  }
};

// The eager decode: the prompt's prefill, then n steps feeding back the
// argmax; the logits of the prefill's last position and of every step.
std::vector<torch::Tensor> eager_decode(HybridLM& m, const torch::Tensor& prompt, const torch::Tensor& first,
                                        int64_t capacity, int64_t n, torch::ScalarType dtype) {
  c10::InferenceMode inference;
  ModelCache cache = m->init_cache(prompt.size(0), capacity, dtype);
  std::vector<torch::Tensor> out;
  torch::Tensor token = first;
  if (prompt.size(1) > 0) {
    out.push_back(m->extend(prompt, cache).select(1, prompt.size(1) - 1).cpu());
    token = out.back().to(prompt.device()).argmax(-1);
  }
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(m->step(token, cache).cpu());
    token = out.back().to(prompt.device()).argmax(-1);
  }
  return out;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Every step's logits and token equal the eager decode's, through the
// sliding window's wrap, with and without meta tokens, for two batch sizes and
// a second sequence on the same (reset) cache.
TEST_P(DeviceDecode, EveryStepEqualsTheEagerDecode) {
  for (int64_t meta : {0, 3}) {
    HybridLM m = model(meta);
    const int64_t P = 7, G = 13, capacity = P + G;
    DeviceDecoder dec(m, capacity, dtype(), graphs());
    int64_t sequence = 0;
    for (int64_t B : {2, 1, 2}) {
      const torch::Tensor prompt = tokens(B, P, 100 + ++sequence);
      const auto want = eager_decode(m, prompt, {}, capacity, G, dtype());
      dec.start(prompt);
      sync(device());
      EXPECT_LE(max_rel_diff(dec.logits(B).cpu(), want[0]), tol()) << "meta " << meta << " B " << B << " prefill";
      for (int64_t g = 0; g < G; ++g) {
        dec.decode(B, 1);
        sync(device());
        EXPECT_LE(max_rel_diff(dec.logits(B).cpu(), want[size_t(g + 1)]), tol())
            << "meta " << meta << " B " << B << " sequence " << sequence << " step " << g;
        EXPECT_TRUE(torch::equal(dec.token(B).cpu(), want[size_t(g + 1)].argmax(-1))) << "step " << g;
        EXPECT_EQ(dec.position(B), meta + P + g + 1);
      }
    }
    // One capture per batch size, however many sequences and steps.
    EXPECT_EQ(dec.captures(), graphs() ? 2 : 0);
  }
}

// Several steps at once (n replays queued back to back) end where single
// steps do.
TEST_P(DeviceDecode, ManyStepsAtOnceEqualSingleSteps) {
  HybridLM m = model(2);
  const int64_t B = 3, P = 4, G = 11;
  DeviceDecoder dec(m, P + G, dtype(), graphs());
  const torch::Tensor prompt = tokens(B, P, 7);
  const auto want = eager_decode(m, prompt, {}, P + G, G, dtype());
  dec.start(prompt);
  dec.decode(B, G);
  sync(device());
  EXPECT_LE(max_rel_diff(dec.logits(B).cpu(), want.back()), tol());
  EXPECT_EQ(dec.position(B), 2 + P + G);
}

// An empty prompt: the meta tokens form the prefill and `first` is the first
// input, as in the eager decode's first step.
TEST_P(DeviceDecode, AnEmptyPromptStartsFromTheFirstToken) {
  for (int64_t meta : {0, 2}) {
    HybridLM m = model(meta);
    const int64_t B = 2, G = 9;
    DeviceDecoder dec(m, G, dtype(), graphs());
    const torch::Tensor first = tokens(B, 1, 3).select(1, 0);
    const auto want = eager_decode(m, tokens(B, 0, 3), first, G, G, dtype());
    dec.start(tokens(B, 0, 3), first);
    for (int64_t g = 0; g < G; ++g) {
      dec.decode(B, 1);
      sync(device());
      EXPECT_LE(max_rel_diff(dec.logits(B).cpu(), want[size_t(g)]), tol()) << "meta " << meta << " step " << g;
    }
    EXPECT_NE(test::error_of([&] { dec.start(tokens(B, 0, 3)); }).find("an empty prompt needs a first token [2]"),
              std::string::npos);
  }
}

// Decoding past the capacity is refused before anything runs.
TEST_P(DeviceDecode, PassingTheCapacityIsRefused) {
  HybridLM m = model(1);
  DeviceDecoder dec(m, 6, dtype(), graphs());
  dec.start(tokens(1, 4, 5));
  dec.decode(1, 2);
  const std::string e = test::error_of([&] { dec.decode(1, 1); });
  EXPECT_NE(e.find("1 steps from position 7 pass the cache capacity of 7 positions"), std::string::npos) << e;
  EXPECT_EQ(dec.position(1), 7);
  EXPECT_NE(test::error_of([&] { dec.decode(5, 1); }).find("no sequence of batch size 5 started"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Settings, DeviceDecode,
                         ::testing::Values(Setting{"cpu", torch::kFloat64}, Setting{"cpu", torch::kFloat32},
                                           Setting{"cuda:0", torch::kFloat32}),
                         [](const auto& info) {
                           std::string n = info.param.device == "cpu" ? "cpu" : "cuda";
                           return n + (info.param.dtype == torch::kFloat64 ? "_float64" : "_float32");
                         });

TEST(DeviceDecodeParts, RopeFromDevicePositionsEqualsRopeFromAnOffset) {
  torch::manual_seed(1);
  const auto x = torch::randn({2, 3, 5, 8}, torch::kFloat64);
  const auto pos = torch::arange(1000, 1005, torch::kLong);
  EXPECT_TRUE(torch::equal(apply_rope(x, pos, 10000.0), apply_rope(x, 1000, 10000.0)));
}

// Attention over a whole buffer under a visibility mask equals the reference
// over the visible prefix (grouped-query heads; the invisible slots hold junk).
TEST(DeviceDecodeParts, MaskedAttentionEqualsTheReferenceOnTheVisibleKeys) {
  torch::manual_seed(2);
  const int64_t S = 9;
  const auto q = torch::randn({2, 4, 1, 6}, torch::kFloat64);
  const auto k = torch::randn({2, 2, S, 6}, torch::kFloat64), v = torch::randn({2, 2, S, 6}, torch::kFloat64);
  for (int64_t t : {int64_t(0), int64_t(4), S - 1}) {
    const auto visible = torch::arange(S) <= t;
    const auto want = attention_reference(q, k.narrow(2, 0, t + 1), v.narrow(2, 0, t + 1), t, 0, 0);
    EXPECT_LE(test::max_abs_diff(attention_visible(q, k, v, visible), want), 1e-12) << "t " << t;
  }
}

// The cudagraph runtime plans one decode entry per sublayer and workload, at
// the cache's capacity, and prices G steps at that entry.
TEST(DeviceDecodeTable, CudagraphPlansAndPricesDecodeAtTheCapacity) {
  const ArchSpec spec = ArchSpec::from_json(
      json{{"d_model", 32}, {"vocab_size", 64}, {"n_meta_tokens", 2},
           {"layers", {{{"type", "attn"}, {"n_heads", 2}}, {{"type", "ffn"}, {"d_ff", 64}}}}},
      "plan test spec");
  const Workload w = Workload::parse("batch=1,prompt=10,generate=6");
  const auto plan = plan_entries({spec}, {w}, "float32", "cudagraph");
  LutTable table("float32", "cudagraph");
  int64_t decode_entries = 0;
  for (const auto& k : plan) {
    if (k.phase == Phase::Decode) {
      ++decode_entries;
      EXPECT_EQ(k.length, 2 + 10 + 6) << k.describe();
    } else {
      EXPECT_EQ(k.length, 2 + 10) << k.describe();
    }
    table.set(k, k.phase == Phase::Decode ? 100.0 : 1000.0);
  }
  EXPECT_EQ(decode_entries, 3);  // attn, ffn, the ends
  const Prediction p = predict(spec, w, table, false);
  EXPECT_DOUBLE_EQ(p.raw_decode_ms, 3 * 6 * 0.1);
  EXPECT_DOUBLE_EQ(p.raw_prefill_ms, 3 * 1.0);
  // The eager runtime plans a grid of contexts instead.
  int64_t eager_decode_entries = 0;
  for (const auto& k : plan_entries({spec}, {w}, "float32", "eager")) eager_decode_entries += k.phase == Phase::Decode;
  EXPECT_GT(eager_decode_entries, 3);
}

// Without a GPU, asking for CUDA graphs is refused with a reason.
TEST(DeviceDecodeTable, CudaGraphsOnTheCpuAreRefused) {
  HybridLM m(every_op_spec(0));
  const std::string e = test::input_error_of([&] { DeviceDecoder d(m, 4, torch::kFloat32, true); });
  EXPECT_TRUE(e.find("CUDA graphs need a model on a CUDA device, not cpu") != std::string::npos ||
              e.find("built without CUDA") != std::string::npos)
      << e;
}

}  // namespace
}  // namespace flashnas
