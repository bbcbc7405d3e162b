// The model folder's config.json (train/checkpoint.h): any text as the
// config of a folder whose weights (model.safetensors) are those of a small
// two-layer model; an accepted folder must then run a forward pass.
#include <filesystem>
#include <string>

#include "common/files.h"
#include "supernet/hybrid_lm.h"
#include "tests/fuzz/fuzz.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

namespace {

// The config a trainer writes for the folder's weights (the seed corpus holds it).
const std::filesystem::path& model_folder() {
  static const std::filesystem::path dir = [] {
    const auto d = flashnas::fuzz::scratch_dir() / "model";
    std::filesystem::create_directories(d);
    const auto spec = flashnas::ArchSpec::parse(
        R"({"vocab_size": 256, "d_model": 32, "tie_embeddings": true,
            "op_defaults": {"mamba2": {"expand": 2, "head_dim": 16, "d_state": 8}, "ffn": {"d_ff": 64}},
            "layers": [{"type": "mamba2"}, {"type": "ffn"}]})",
        "fuzz model");
    torch::manual_seed(0);
    flashnas::HybridLM model(spec);
    flashnas::save_safetensors(d / "model.safetensors", flashnas::named_tensors(*model));
    return d;
  }();
  return dir;
}

}  // namespace

FLASHNAS_FUZZ_TARGET(model_config) {
  const auto& dir = model_folder();
  flashnas::write_file_atomic(dir / "config.json", std::string_view(reinterpret_cast<const char*>(data), size));
  flashnas::fuzz::guard("model_config", [&] {
    torch::NoGradGuard no_grad;
    auto m = flashnas::load_model_dir(dir);
    const auto ids = m.tokenizer->encode("def f(x):");
    if (ids.empty()) return;
    std::vector<int64_t> ids64(ids.begin(), ids.end());
    (void)m.model->forward(torch::tensor(ids64).unsqueeze(0));
  });
  return 0;
}
