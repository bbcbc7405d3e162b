#include "supernet/hybrid_lm.h"

#include <torch/nn/init.h>

#include "common/error.h"
#include "supernet/ops/init.h"
#include "supernet/registry.h"

namespace flashnas {

SublayerImpl::SublayerImpl(const LayerSpec& spec, int64_t d_model, double eps) {
  norm = register_module("norm", RMSNorm(d_model, eps));
  op = register_module(spec.type, make_operator(spec.type, spec.hp, d_model));
}

HybridLMImpl::HybridLMImpl(const ArchSpec& spec) : spec_(spec) {
  const int64_t d = spec.d_model;
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(spec.vocab_size, d));
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(embed_tokens->weight, 0.0, kInitStd);
  }
  if (spec.n_meta_tokens > 0) {
    meta_tokens = register_parameter("meta_tokens", torch::randn({spec.n_meta_tokens, d}) * kInitStd);
  }
  layers = register_module("layers", torch::nn::ModuleList());
  for (const auto& l : spec.layers) {
    Sublayer s(l, d, spec.norm_eps);
    layers->push_back(s);
    sublayers.push_back(s);
  }
  norm = register_module("norm", RMSNorm(d, spec.norm_eps));
  if (!spec.tie_embeddings) lm_head = register_module("lm_head", linear_no_bias(d, spec.vocab_size));
}

torch::Tensor HybridLMImpl::embed(const torch::Tensor& tokens, bool with_meta) {
  TORCH_CHECK(tokens.dim() == 2, "HybridLM: tokens must be [B, T]");
  auto x = embed_tokens->forward(tokens);
  if (with_meta && spec_.n_meta_tokens > 0) {
    auto m = meta_tokens.to(x.scalar_type()).unsqueeze(0).expand({tokens.size(0), -1, -1});
    x = torch::cat({m, x}, 1);
  }
  return x;
}

torch::Tensor HybridLMImpl::head(const torch::Tensor& h) {
  auto y = norm->forward(h);
  return spec_.tie_embeddings ? torch::matmul(y, embed_tokens->weight.t()) : lm_head->forward(y);
}

torch::Tensor HybridLMImpl::forward(const torch::Tensor& tokens) {
  auto x = embed(tokens, true);
  for (auto& s : sublayers) x = s->forward(x, nullptr);
  if (spec_.n_meta_tokens > 0) x = x.narrow(1, spec_.n_meta_tokens, tokens.size(1));
  return head(x);
}

ModelCache HybridLMImpl::init_cache(int64_t batch, int64_t max_tokens, torch::ScalarType dtype) const {
  ModelCache c;
  c.max_context = max_tokens + spec_.n_meta_tokens;
  for (const auto& s : sublayers) c.layers.push_back(s->op->init_state(batch, c.max_context, dtype));
  return c;
}

torch::Tensor HybridLMImpl::extend(const torch::Tensor& tokens, ModelCache& cache) {
  const bool fresh = cache.pos == 0;
  auto x = embed(tokens, fresh);
  const int64_t n = x.size(1);
  if (cache.pos + n > cache.max_context) {
    throw Error("HybridLM: context of " + std::to_string(cache.pos + n) + " positions exceeds the cache capacity of " +
                std::to_string(cache.max_context));
  }
  for (size_t i = 0; i < sublayers.size(); ++i) x = sublayers[i]->forward(x, &cache.layers[i]);
  cache.pos += n;
  if (cache.pos_dev.defined()) cache.pos_dev.fill_(cache.pos);
  if (fresh && spec_.n_meta_tokens > 0) x = x.narrow(1, spec_.n_meta_tokens, tokens.size(1));
  return head(x);
}

std::pair<torch::Tensor, ModelCache> HybridLMImpl::prefill(const torch::Tensor& tokens, int64_t max_tokens) {
  auto dtype = embed_tokens->weight.scalar_type();
  ModelCache cache = init_cache(tokens.size(0), max_tokens, dtype);
  auto logits = extend(tokens, cache);
  return {logits, std::move(cache)};
}

torch::Tensor HybridLMImpl::step(const torch::Tensor& token, ModelCache& cache) {
  TORCH_CHECK(token.dim() == 1, "HybridLM::step: token must be [B]");
  if (cache.pos == 0 && spec_.n_meta_tokens > 0) {
    // The meta tokens must be in the cache before the first real token.
    return extend(token.unsqueeze(1), cache).squeeze(1);
  }
  if (cache.pos + 1 > cache.max_context) {
    throw Error("HybridLM: decode step past the cache capacity of " + std::to_string(cache.max_context) + " positions");
  }
  auto x = embed_tokens->forward(token);
  for (size_t i = 0; i < sublayers.size(); ++i) x = sublayers[i]->step(x, cache.layers[i]);
  cache.pos += 1;
  if (cache.pos_dev.defined()) cache.pos_dev.add_(1);
  return head(x);
}

void HybridLMImpl::use_device_positions(ModelCache& cache) const {
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(embed_tokens->weight.device());
  cache.pos_dev = torch::full({1}, cache.pos, opts);
  for (auto& l : cache.layers) {
    if (l.pos != cache.pos) {
      throw Error("HybridLM: layer at position " + std::to_string(l.pos) + ", model at " + std::to_string(cache.pos));
    }
    l.pos_dev = cache.pos_dev;
  }
}

void HybridLMImpl::reset_cache(ModelCache& cache) {
  for (auto& l : cache.layers) {
    for (auto& [name, t] : l.buffers) t.zero_();
    l.pos = 0;
  }
  cache.pos = 0;
  if (cache.pos_dev.defined()) cache.pos_dev.zero_();
}

}  // namespace flashnas
