// What `flashnas data` reports about token files: the summary of a prepare
// run as a line of text, and a token file's description (header, the split
// by document, unigram entropy, task lengths) as JSON and as text.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace flashnas {

using json = nlohmann::json;

// One or more lines for the JSON summary prepare_token_file returns
// (training_data.h), written to `out`.
std::string prepare_summary_text(const json& summary, const std::string& out);

// Describes the token file at `path`: tokens, documents, vocabulary, token
// width, meta; the train/val split by document for (val_fraction, seed);
// unigram entropy of the training split in bits per token and per byte;
// for task files, "task_lengths" (task_stats.h). InputError for a bad file.
json token_file_info(const std::string& path, double val_fraction, uint64_t seed);

// The same as lines of text.
std::string token_file_info_text(const json& info);

}  // namespace flashnas
