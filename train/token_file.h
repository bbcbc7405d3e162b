// Pre-tokenized token files: a small header recording the vocabulary, the
// token width and the tokenizer, a document table, then the tokens; read back
// through mmap, so a file can exceed RAM.
//
// Layout (little-endian):
//   0   char[8]  magic "FNTOKENS"
//   8   u32      format version (1)
//   12  u32      bytes per token (2 or 4)
//   16  u64      vocabulary size
//   24  u64      number of tokens
//   32  u64      number of documents D
//   40  u64      length M of the JSON metadata ({"tokenizer": {...}, "source": ...})
//   48  M bytes  metadata, then zero padding to a multiple of 8
//   ... u64[D+1] token offset of each document (the last is the token count)
//   ... u64[D]   UTF-8 bytes of each document (for bits per byte)
//   ... tokens (u16 or u32)
#pragma once
#include "common/json_io.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "train/corpus.h"
#include "train/tokenizer.h"

namespace flashnas {

// Tokenizes `docs` and writes a token file atomically. Returns the number of
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
  const unsigned char* tokens_ = nullptr;
};

}  // namespace flashnas
