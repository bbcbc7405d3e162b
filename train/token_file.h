// Pre-tokenized token files: a small header recording the vocabulary, the
// token width and the tokenizer, a document table, then the tokens; read back
// through mmap, so a file can exceed RAM.
//
// Layout (little-endian):
//   0   char[8]  magic "FNTOKENS"
//   8   u32      format version (1: text; 2: task data, with the two
//                completion sections marked [v2] below)
//   12  u32      bytes per token (2 or 4)
//   16  u64      vocabulary size
//   24  u64      number of tokens
//   32  u64      number of documents D
//   40  u64      length M of the JSON metadata ({"tokenizer": {...}, "source": ...})
//   48  M bytes  metadata, then zero padding to a multiple of 8
//   ... u64[D+1] token offset of each document (the last is the token count)
//   ... u64[D]   UTF-8 bytes of each document (for bits per byte)
//   ... u64[D]   [v2] UTF-8 bytes of each document's completion (end marker included)
//   ... tokens (u16 or u32)
//   ... u8[N]    [v2] 1 where the token belongs to the completion, else 0;
//                a document's completion tokens are its last ones
// A task record's prompt and completion are tokenized separately, so the
// boundary falls between tokens with every tokenizer.
#pragma once
#include "common/json_io.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "train/corpus.h"
#include "train/tokenizer.h"

namespace flashnas {

// Tokenizes `docs` and writes a token file atomically (version 2 when the
// documents are task records: all or none must have completion_at >= 0). Returns the number of
// tokens. The metadata names the tokenizer's model file as `model_name`,
// relative to the token file's folder (a SentencePiece model must be there).
int64_t write_token_file(const std::filesystem::path& out, const std::vector<Document>& docs,
                         const Tokenizer& tokenizer, const json& extra_meta = json::object(),
                         const std::string& model_name = "tokenizer.model");

// True when the file starts with the token-file magic.
bool is_token_file(const std::filesystem::path& path);

class TokenFile {
 public:
  // Maps the file; InputError naming it when it is not a valid token file.
  explicit TokenFile(const std::filesystem::path& path);
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  int64_t vocab_size() const { return vocab_; }
  int64_t num_tokens() const { return n_tokens_; }
  int64_t num_docs() const { return n_docs_; }
  int64_t token_bytes() const { return width_; }
  const json& meta() const { return meta_; }
  int64_t doc_begin(int64_t d) const { return static_cast<int64_t>(offsets_[d]); }
  int64_t doc_end(int64_t d) const { return static_cast<int64_t>(offsets_[d + 1]); }
  int64_t doc_bytes(int64_t d) const { return static_cast<int64_t>(bytes_[d]); }
  // Task data (version 2): whether tokens carry the completion mask; the
  // completion's UTF-8 bytes and tokens of document d (0 for text files).
  bool has_completion_mask() const { return mask_ != nullptr; }
  int64_t doc_completion_bytes(int64_t d) const { return completion_bytes_ ? static_cast<int64_t>(completion_bytes_[d]) : 0; }
  int64_t doc_completion_tokens(int64_t d) const;
  // Copies the completion mask of tokens [begin, begin + n) (0 or 1; all 0
  // for a text file).
  void read_mask(int64_t begin, int64_t n, uint8_t* out) const;
  // Copies tokens [begin, begin + n) into out (as int64).
  void read(int64_t begin, int64_t n, int64_t* out) const;
  // Reads every token once (about as long as the unigram statistics take):
  // InputError naming the file and the first id outside the vocabulary.
  void check_ids() const;

 private:
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  int64_t vocab_ = 0, n_tokens_ = 0, n_docs_ = 0, width_ = 0;
  json meta_;
  const uint64_t* offsets_ = nullptr;
  const uint64_t* bytes_ = nullptr;
  const uint64_t* completion_bytes_ = nullptr;
  const unsigned char* tokens_ = nullptr;
  const uint8_t* mask_ = nullptr;
};

}  // namespace flashnas
