#include "export/hf_export.h"

#include "supernet/registry.h"

#include <algorithm>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "train/checkpoint.h"
#include "train/sp_tokenizer_json.h"

namespace flashnas {

namespace fs = std::filesystem;

std::vector<std::string> ops_without_transformers(const json& arch) {
  std::vector<std::string> out;
  for (const auto& l : arch.at("layers")) {
    const std::string t = l.at("type").get<std::string>();
    if (!find_op_kind(t, "arch").transformers && std::find(out.begin(), out.end(), t) == out.end()) out.push_back(t);
  }
  return out;
}

// The registry's `transformers` flag, as "attn, swa and ffn".
std::string hf_op_list() {
  std::vector<std::string> names;
  for (const auto& k : op_kinds()) {
    if (k.transformers) names.push_back(k.name);
  }
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
  return out;
}

namespace {

// GPT-2's reversible map from bytes to printable characters, as UTF-8: the
// printable Latin-1 bytes stand for themselves, the others (controls, space,
// 0x7f-0xa0, 0xad) take code points 256, 257, ... in byte order.
std::vector<std::string> byte_chars() {
  auto printable = [](int b) { return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff); };
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xc0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3f));
    } else {
      s += char(0xe0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3f));
      s += char(0x80 | (cp & 0x3f));
    }
    return s;
  };
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) out[size_t(b)] = utf8(printable(b) ? b : next++);
  return out;
}

}  // namespace

json byte_level_tokenizer_json() {
  const auto chars = byte_chars();
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[chars[size_t(b)]] = b;
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", byte_level},
              {"post_processor", nullptr},
              {"decoder", byte_level},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", json::array()}}}};
}

void write_hf_files(const fs::path& dir) {
  const fs::path cfg_path = dir / "config.json";
  json cfg = load_json_file(cfg_path);
  if (!cfg.contains("arch") || !cfg.contains("tokenizer")) {
    throw InputError(cfg_path.string() + ": needs the fields \"arch\" and \"tokenizer\"");
  }
  const json arch = cfg["arch"];
  const auto missing = ops_without_transformers(arch);
  if (!missing.empty()) {
    // Every registered operator has one (tests/test_hf_export.py checks the registry): reaching this is a bug.
    throw Error(cfg_path.string() + ": operator \"" + missing[0] + "\" has no transformers implementation (modeling_flashnas.py has " +
                hf_op_list() + ")");
  }
  for (const auto& [name, text] : hf_code_files()) write_file_atomic(dir / name, text);
  cfg["model_type"] = "flashnas";
  cfg["architectures"] = {"FlashnasForCausalLM"};
  cfg["auto_map"] = {{"AutoConfig", "configuration_flashnas.FlashnasConfig"},
                     {"AutoModelForCausalLM", "modeling_flashnas.FlashnasForCausalLM"}};
  cfg["vocab_size"] = arch.at("vocab_size");
  cfg["hidden_size"] = arch.at("d_model");
  cfg["num_hidden_layers"] = arch.at("layers").size();
  cfg["tie_word_embeddings"] = false;  // tied embeddings are the model's own business (no lm_head)
  write_file_atomic(cfg_path, cfg.dump(2) + "\n");
  // No end-of-text token: generation runs for max_new_tokens.
  write_file_atomic(dir / "generation_config.json",
                    json{{"do_sample", false}, {"pad_token_id", 0}, {"bos_token_id", nullptr}, {"eos_token_id", nullptr}}
                            .dump(2) +
                        "\n");
  const std::string tok_type = cfg["tokenizer"].value("type", "");
  if (tok_type == "byte" || tok_type == "sentencepiece") {
    const json tj = tok_type == "byte"
                        ? byte_level_tokenizer_json()
                        : sentencepiece_tokenizer_json(dir / cfg["tokenizer"].value("model", std::string("tokenizer.model")));
    write_file_atomic(dir / "tokenizer.json", tj.dump() + "\n");
    write_file_atomic(dir / "tokenizer_config.json",
                      json{{"tokenizer_class", "PreTrainedTokenizerFast"},
                           {"model_max_length", 1000000},
                           {"clean_up_tokenization_spaces", false}}
                              .dump(2) +
                          "\n");
  }
}

void export_model_folder(const fs::path& model, const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec)) throw InputError("--out: " + out.string() + " exists; give a new folder");
  // Loading checks the folder whole: config, tokenizer and weights.
  const LoadedModel m = load_model_dir(model);
  const fs::path tmp = make_work_dir(out);
  try {
    fs::copy_file(model / "model.safetensors", tmp / "model.safetensors");
    json cfg = m.config;
    cfg["tokenizer"] = m.tokenizer->describe();
    write_file_atomic(tmp / "config.json", cfg.dump(2) + "\n");
    m.tokenizer->save_files(tmp);
    for (const char* extra : {"latency.json", "README.md"}) {  // an export's own
      if (fs::exists(model / extra)) fs::copy_file(model / extra, tmp / extra);
    }
    write_hf_files(tmp);
    publish_work_dir(tmp, out);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

}  // namespace flashnas
