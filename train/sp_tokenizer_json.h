// A SentencePiece model as a Hugging Face `tokenizers` description
// (tokenizer.json), so that `AutoTokenizer` loads an exported model folder
// and encodes text to the same ids as flashnas.
//
// What it writes: the unigram pieces with their scores in id order (control
// and unused pieces kept for their ids but never chosen, as SentencePiece
// never chooses them; control pieces also as special added tokens); byte
// fallback when the model has byte pieces; a normalizer that applies the
// model's own character map (none for "identity", which flashnas trains
// with), SentencePiece's whitespace rules (remove_extra_whitespaces,
// add_dummy_prefix) and its whitespace symbol U+2581; a pre-tokenizer that
// starts a word at every whitespace symbol; the matching decoder.
#pragma once
#include <filesystem>

#include "common/json_io.h"

namespace flashnas {

// InputError naming the file for a file that is not a SentencePiece model,
// or a model tokenizer.json cannot express exactly (not unigram, or
// whitespace not escaped and split as SentencePiece does by default).
json sentencepiece_tokenizer_json(const std::filesystem::path& model_file);

}  // namespace flashnas
