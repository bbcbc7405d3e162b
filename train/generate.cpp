#include "train/generate.h"

#include <chrono>
#include <cmath>

#include "common/error.h"

namespace flashnas {

Generated generate_text(const LoadedModel& m, const std::string& prompt, const GenerateOptions& o) {
  if (o.tokens <= 0) throw InputError("--tokens: must be positive");
  if (!(o.temperature >= 0) || !std::isfinite(o.temperature)) throw InputError("--temperature: must be a finite number >= 0");
  Generated g;
  g.prompt_ids = m.tokenizer->encode(prompt);
  if (g.prompt_ids.empty()) throw InputError("--prompt: must not be empty");
  HybridLM model = m.model;  // the holder shares the module
  c10::InferenceMode guard;
  torch::manual_seed(o.seed);
  auto x = torch::tensor(std::vector<int64_t>(g.prompt_ids.begin(), g.prompt_ids.end()), torch::kLong).unsqueeze(0);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto [logits, cache] = model->prefill(x, int64_t(g.prompt_ids.size()) + o.tokens);
  const auto t1 = clock::now();
  auto pick = [&](const torch::Tensor& l) {
    if (o.temperature == 0) return l.argmax(-1);
    return torch::multinomial(torch::softmax(l / o.temperature, -1), 1).squeeze(-1);
  };
  torch::Tensor tok = pick(logits.select(1, logits.size(1) - 1));
  for (int64_t i = 0; i < o.tokens; ++i) {
    g.ids.push_back(int32_t(tok.item<int64_t>()));
    if (i + 1 < o.tokens) tok = pick(model->step(tok, cache));
  }
  const auto t2 = clock::now();
  g.prefill_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double decode_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  g.decode_ms_per_token = o.tokens > 1 ? decode_ms / double(o.tokens - 1) : 0;
  g.text = m.tokenizer->decode(g.ids);
  return g;
}

}  // namespace flashnas
