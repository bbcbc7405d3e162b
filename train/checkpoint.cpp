#include "train/checkpoint.h"

#include <set>

#include "common/error.h"
#include "supernet/accounting.h"
#include "train/safetensors.h"

namespace flashnas {

std::map<std::string, torch::Tensor> named_tensors(HybridLMImpl& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value();
  return out;
}

void load_into(HybridLMImpl& model, const std::map<std::string, torch::Tensor>& src, const std::string& where) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  std::set<std::string> expected;
  for (auto& p : params) {
    expected.insert(p.key());
    auto it = src.find(p.key());
    if (it == src.end()) throw InputError(where + ": missing tensor " + p.key());
    if (it->second.sizes() != p.value().sizes()) {
      throw InputError(where + ": tensor " + p.key() + " has shape " + c10::str(it->second.sizes()) +
                       ", the architecture expects " + c10::str(p.value().sizes()));
    }
    if (it->second.is_floating_point() && !torch::isfinite(it->second).all().item<bool>()) {
      throw InputError(where + ": tensor " + p.key() + " holds NaN or infinite values; the file is damaged");
    }
    p.value().copy_(it->second);
  }
  for (const auto& [name, t] : src) {
    if (!expected.count(name)) throw InputError(where + ": tensor " + name + " is not part of the architecture");
  }
}

LoadedModel load_model_dir(const std::filesystem::path& dir) {
  const auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path)) {
    throw InputError(dir.string() + ": not a model folder (no config.json); make one with flashnas export or train");
  }
  LoadedModel m;
  m.config = load_json_file(cfg_path);
  if (!m.config.is_object()) {
    throw InputError(cfg_path.string() + ": not a JSON object (a model folder's config.json holds {\"format\", \"arch\", \"tokenizer\", ...})");
  }
  // The folder's format: a newer flashnas may lay out or name things otherwise.
  const json fmt = m.config.value("format", json());
  if (fmt != "flashnas.checkpoint/1") {
    throw InputError(cfg_path.string() + ": field \"format\" is " + (fmt.is_null() ? std::string("missing") : fmt.dump()) +
                     "; this flashnas reads \"flashnas.checkpoint/1\" (a folder from a newer flashnas needs that version)");
  }
  if (!m.config.contains("arch") || !m.config.contains("tokenizer")) {
    throw InputError(cfg_path.string() + ": needs the fields \"arch\" and \"tokenizer\"");
  }
  m.arch = ArchSpec::from_json(m.config["arch"], cfg_path.string() + " arch");
  m.tokenizer = std::shared_ptr<Tokenizer>(tokenizer_from_json(m.config["tokenizer"], dir, cfg_path.string()));
  const auto w = dir / "model.safetensors";
  const auto tensors = load_safetensors(w);
  // Counted before the model is built, so that a config naming a far larger
  // architecture than the weights fails here rather than allocating it (the
  // model then never needs more than about twice the file's memory). Smaller
  // differences go on to load_into, which names the tensor that differs.
  int64_t stored = 0;
  for (const auto& [name, t] : tensors) stored += t.numel();
  const int64_t expected = account(m.arch, 1, 4).params_total;
  if (expected > 2 * stored + (int64_t(1) << 20)) {
    throw InputError(w.string() + ": holds " + std::to_string(stored) + " parameters, but the architecture in " +
                     cfg_path.string() + " has " + std::to_string(expected) +
                     " (the weights and config.json come from different models)");
  }
  m.model = HybridLM(m.arch);
  load_into(*m.model, tensors, w.string());
  m.model->eval();
  return m;
}

}  // namespace flashnas
