// Text corpora: a UTF-8 file or a folder of them (recursively, in sorted path
// order, so that every machine sees the same documents in the same order).
// Each file is a document; a file larger than `max_doc_bytes` is cut at line
// boundaries into several documents, so that a single big file can still be
// split into train and validation by document.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace flashnas {

struct Document {
  std::string source;  // "path" or "path#k" for the k-th piece of a cut file, "path:line" for a task record
  std::string text;
  // Task records (train/task_data.h): the byte offset in `text` where the
  // completion begins (the completion is the rest of the text); -1 for plain text.
  int64_t completion_at = -1;
};

// The text files under `path` (or `path` itself). InputError naming the path
// when it does not exist or holds no regular files.
std::vector<std::filesystem::path> list_text_files(const std::filesystem::path& path);

// Reads and checks every file: unreadable, empty, binary (NUL bytes) or
// non-UTF-8 files are InputErrors naming the file and, for bad bytes, the
// byte offset.
std::vector<Document> read_corpus(const std::filesystem::path& path, int64_t max_doc_bytes = 1 << 20);

// Offset of the first invalid UTF-8 sequence, or -1 when `s` is valid.
int64_t first_invalid_utf8(const std::string& s);

}  // namespace flashnas
