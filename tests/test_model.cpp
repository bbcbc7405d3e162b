// HybridLM: prefill + decode equals one forward; chunked prefill; parameter
// names and counts against hand-computed formulas; FLOP and state accounting.
// Tolerances as in test_ops.cpp (float64 1e-10 absolute, float32 1e-4 relative).
#include <gtest/gtest.h>

#include "common/error.h"
#include "supernet/accounting.h"
#include "supernet/hybrid_lm.h"
#include "tests/test_util.h"

namespace flashnas {
namespace {

using test::max_abs_diff;
using test::max_rel_diff;

ArchSpec hybrid_spec(int64_t meta, bool tied) {
  json doc = {{"d_model", 32},
              {"vocab_size", 50},
              {"n_meta_tokens", meta},
              {"tie_embeddings", tied},
              {"layers",
               {{{"type", "attn"}, {"n_heads", 4}, {"n_kv_heads", 2}},
                {{"type", "ffn"}, {"d_ff", 48}},
                {{"type", "attn"}, {"n_heads", 4}, {"n_kv_heads", 1}},
                {{"type", "attn"}, {"n_heads", 2}, {"n_kv_heads", 2}, {"head_dim", 8}},
                {{"type", "ffn"}, {"d_ff", 40}}}}};
  return ArchSpec::from_json(doc, "test");
}

struct ModelCase {
  int64_t meta;
  bool tied;
  torch::ScalarType dtype;
};
void PrintTo(const ModelCase& c, std::ostream* os) {
  *os << "meta=" << c.meta << (c.tied ? " tied " : " untied ") << c.dtype;
}

class ModelConsistency : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelConsistency, PrefillThenStepEqualsForward) {
  const auto c = GetParam();
  torch::manual_seed(11);
  HybridLM model(hybrid_spec(c.meta, c.tied));
  model->to(c.dtype);
  torch::NoGradGuard no_grad;
  const int64_t B = 2, P = 7, T = 20;
  auto tokens = torch::randint(0, 50, {B, T}, torch::kLong);
  auto full = model->forward(tokens);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{B, T, 50}));
  auto [pre_logits, cache] = model->prefill(tokens.narrow(1, 0, P), T);
  EXPECT_EQ(cache.pos, P + c.meta);
  std::vector<torch::Tensor> logits = {pre_logits};
  for (int64_t t = P; t < T; ++t) logits.push_back(model->step(tokens.select(1, t), cache).unsqueeze(1));
  auto got = torch::cat(logits, 1);
  if (c.dtype == torch::kFloat64) {
    EXPECT_LE(max_abs_diff(got, full), 1e-10);
  } else {
    EXPECT_LE(max_rel_diff(got, full), 1e-4);
  }
  // Chunked prefill (3 uneven chunks) gives the same logits too.
  auto cache2 = model->init_cache(B, T, c.dtype);
  std::vector<torch::Tensor> chunks;
  for (auto [s, n] : std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 1}, {6, 14}}) {
    chunks.push_back(model->extend(tokens.narrow(1, s, n), cache2));
  }
  auto chunked = torch::cat(chunks, 1);
  if (c.dtype == torch::kFloat64) {
    EXPECT_LE(max_abs_diff(chunked, full), 1e-10);
  } else {
    EXPECT_LE(max_rel_diff(chunked, full), 1e-4);
  }
}

TEST_P(ModelConsistency, DecodeFromEmptyCacheEqualsForward) {
  const auto c = GetParam();
  torch::manual_seed(12);
  HybridLM model(hybrid_spec(c.meta, c.tied));
  model->to(c.dtype);
  torch::NoGradGuard no_grad;
  auto tokens = torch::randint(0, 50, {1, 9}, torch::kLong);
  auto full = model->forward(tokens);
  auto cache = model->init_cache(1, 9, c.dtype);
  std::vector<torch::Tensor> logits;
  for (int64_t t = 0; t < 9; ++t) logits.push_back(model->step(tokens.select(1, t), cache));
  auto got = torch::stack(logits, 1);
  EXPECT_LE(c.dtype == torch::kFloat64 ? max_abs_diff(got, full) : max_rel_diff(got, full),
            c.dtype == torch::kFloat64 ? 1e-10 : 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelConsistency,
                         ::testing::Values(ModelCase{0, false, torch::kFloat64}, ModelCase{3, false, torch::kFloat64},
                                           ModelCase{3, true, torch::kFloat64}, ModelCase{0, true, torch::kFloat32},
                                           ModelCase{3, false, torch::kFloat32}),
                         [](const auto& info) {
                           return "meta" + std::to_string(info.param.meta) + (info.param.tied ? "_tied" : "_untied") +
                                  (info.param.dtype == torch::kFloat64 ? "_f64" : "_f32");
                         });

TEST(Model, ParameterNamesFollowConventions) {
  HybridLM model(hybrid_spec(3, false));
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  std::vector<std::string> want = {
      "embed_tokens.weight",          "meta_tokens",
      "layers.0.norm.weight",         "layers.0.attn.q_proj.weight",
      "layers.0.attn.k_proj.weight",  "layers.0.attn.v_proj.weight",
      "layers.0.attn.o_proj.weight",  "layers.1.norm.weight",
      "layers.1.ffn.gate_proj.weight", "layers.1.ffn.up_proj.weight",
      "layers.1.ffn.down_proj.weight", "layers.2.norm.weight",
      "layers.2.attn.q_proj.weight",  "layers.2.attn.k_proj.weight",
      "layers.2.attn.v_proj.weight",  "layers.2.attn.o_proj.weight",
      "layers.3.norm.weight",         "layers.3.attn.q_proj.weight",
      "layers.3.attn.k_proj.weight",  "layers.3.attn.v_proj.weight",
      "layers.3.attn.o_proj.weight",  "layers.4.norm.weight",
      "layers.4.ffn.gate_proj.weight", "layers.4.ffn.up_proj.weight",
      "layers.4.ffn.down_proj.weight", "norm.weight",
      "lm_head.weight"};
  std::sort(names.begin(), names.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(names, want);
  HybridLM tied(hybrid_spec(0, true));
  for (const auto& p : tied->named_parameters()) {
    EXPECT_NE(p.key(), "lm_head.weight");
    EXPECT_NE(p.key(), "meta_tokens");
  }
}

int64_t numel_of(const HybridLM& m) {
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  return n;
}

TEST(Accounting, ParamsEqualHandFormulasAndTheBuiltModel) {
  // d=32, V=50, M=3. attn(4,2,dh=8): 32*8*(2*4+2*2) = 3072; attn(4,1,dh=8): 32*8*(8+2) = 2560;
  // attn(2,2,dh=8): 32*8*(4+4) = 2048; ffn 48: 3*32*48 = 4608; ffn 40: 3*32*40 = 3840; each + 32 norm.
  const ArchSpec spec = hybrid_spec(3, false);
  const ModelAccount m = account(spec, 100, 4);
  ASSERT_EQ(m.layers.size(), 5u);
  EXPECT_EQ(m.layers[0].params, 3072 + 32);
  EXPECT_EQ(m.layers[1].params, 4608 + 32);
  EXPECT_EQ(m.layers[2].params, 2560 + 32);
  EXPECT_EQ(m.layers[3].params, 2048 + 32);
  EXPECT_EQ(m.layers[4].params, 3840 + 32);
  EXPECT_EQ(m.params_embedding, 50 * 32);
  EXPECT_EQ(m.params_meta, 3 * 32);
  EXPECT_EQ(m.params_head, 50 * 32);
  EXPECT_EQ(m.params_total, 3072 + 4608 + 2560 + 2048 + 3840 + 5 * 32 + 1600 + 96 + 1600 + 32);
  EXPECT_EQ(m.params_total, numel_of(HybridLM(spec)));
  const ArchSpec tied = hybrid_spec(0, true);
  EXPECT_EQ(account(tied, 1, 4).params_head, 0);
  EXPECT_EQ(account(tied, 1, 4).params_total, numel_of(HybridLM(tied)));
}

TEST(Accounting, FlopsAndStateBytes) {
  const ArchSpec spec = hybrid_spec(3, false);
  const int64_t t = 100, pos = t + 3;  // meta tokens join every context
  const ModelAccount m = account(spec, t, 2);
  // Layer 0 decode: 2*3072 projections + 4*Hq*dh*pos = 4*4*8*103.
  EXPECT_DOUBLE_EQ(m.layers[0].flops_decode, 2.0 * 3072 + 4.0 * 32 * pos);
  // Prefill averages the causal key count: (pos + 1) / 2.
  EXPECT_DOUBLE_EQ(m.layers[0].flops_prefill, 2.0 * 3072 + 4.0 * 32 * (pos + 1) / 2.0);
  EXPECT_DOUBLE_EQ(m.layers[1].flops_decode, 2.0 * 4608);
  // KV state: 2 * Hkv * dh * pos * bytes.
  EXPECT_EQ(m.layers[0].state_bytes, 2 * 2 * 8 * pos * 2);
  EXPECT_EQ(m.layers[2].state_bytes, 2 * 1 * 8 * pos * 2);
  EXPECT_EQ(m.layers[1].state_bytes, 0);
  EXPECT_EQ(m.state_bytes, 2 * 8 * pos * 2 * (2 + 1 + 2));
  double sum = 2.0 * 50 * 32;  // LM head
  for (const auto& l : m.layers) sum += l.flops_decode;
  EXPECT_DOUBLE_EQ(m.flops_per_token_decode, sum);
}

TEST(Model, CacheOverflowAndSeededInit) {
  torch::manual_seed(7);
  HybridLM a(hybrid_spec(0, false));
  torch::manual_seed(7);
  HybridLM b(hybrid_spec(0, false));
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i]));
  torch::NoGradGuard no_grad;
  auto [logits, cache] = a->prefill(torch::zeros({1, 4}, torch::kLong), 5);
  a->step(torch::zeros({1}, torch::kLong), cache);
  try {
    a->step(torch::zeros({1}, torch::kLong), cache);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("past the cache capacity of 5 positions"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flashnas
