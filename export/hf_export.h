// The Hugging Face side of an exported model folder: with it,
// transformers.AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)
// loads flashnas's model.safetensors as it is, and AutoTokenizer loads the
// tokenizer (byte-level, or SentencePiece through train/sp_tokenizer_json.h).
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/json_io.h"

namespace flashnas {

// {file name, contents} of the modelling code (export/hf/*.py, embedded at
// build time): configuration_flashnas.py and modeling_flashnas.py.
const std::vector<std::pair<std::string, std::string>>& hf_code_files();

// The tokenizer.json of the byte-level tokenizer (token i is byte i) for the
// tokenizers library: GPT-2's byte-to-character map, no merges, no specials.
json byte_level_tokenizer_json();

// The operator types of `arch` (an ArchSpec's JSON) that modeling_flashnas.py
// does not implement (OpKind::transformers false), in order of appearance.
std::vector<std::string> ops_without_transformers(const json& arch);
// "attn, swa, mamba2, deltanet, gdn and ffn": the operators it implements.
std::string hf_op_list();

// Adds the transformers files to a flashnas model folder `dir` (one with
// config.json holding "arch" and "tokenizer", and model.safetensors): the
// modelling code; config.json gains model_type, architectures, auto_map and
// the usual size names (flashnas's own fields stay); generation_config.json;
// tokenizer.json and tokenizer_config.json for the tokenizers library (a
// SentencePiece model also stays as tokenizer.model, which flashnas reads;
// InputError naming it when tokenizer.json cannot express it). Every file is
// written atomically.
void write_hf_files(const std::filesystem::path& dir);

// Copies the model folder `model` (flashnas train's run folder, or an
// export) to the new folder `out` with the transformers files added; nothing
// is left at `out` if it fails.
void export_model_folder(const std::filesystem::path& model, const std::filesystem::path& out);

}  // namespace flashnas
