#include "train/corpus.h"

#include <algorithm>

#include "common/error.h"
#include "common/files.h"

namespace flashnas {
namespace fs = std::filesystem;

std::vector<fs::path> list_text_files(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such file or directory");
  std::vector<fs::path> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw InputError(path.string() + ": directory holds no files");
  } else {
    files.push_back(path);
  }
  return files;
}

int64_t first_invalid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return static_cast<int64_t>(i);
    if (i + len > n) return static_cast<int64_t>(i);
    for (size_t j = 1; j < len; ++j) {
      if ((p[i + j] & 0xC0) != 0x80) return static_cast<int64_t>(i);
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return static_cast<int64_t>(i);
    }
    i += len;
  }
  return -1;
}

std::vector<Document> read_corpus(const fs::path& path, int64_t max_doc_bytes) {
  std::vector<Document> docs;
  for (const auto& file : list_text_files(path)) {
    std::string text = read_file(file);
    if (text.empty()) throw InputError(file.string() + ": file is empty");
    if (text.find('\0') != std::string::npos) {
      throw InputError(file.string() + ": looks binary (NUL byte at offset " + std::to_string(text.find('\0')) +
                       "); expected UTF-8 text");
    }
    const int64_t bad = first_invalid_utf8(text);
    if (bad >= 0) throw InputError(file.string() + ": invalid UTF-8 at byte offset " + std::to_string(bad));
    if (static_cast<int64_t>(text.size()) <= max_doc_bytes) {
      docs.push_back({file.string(), std::move(text)});
      continue;
    }
    size_t start = 0;
    int piece = 0;
    while (start < text.size()) {
      size_t end = std::min(text.size(), start + static_cast<size_t>(max_doc_bytes));
      if (end < text.size()) {
        const size_t nl = text.rfind('\n', end);
        if (nl != std::string::npos && nl > start) end = nl + 1;
      }
      docs.push_back({file.string() + "#" + std::to_string(piece++), text.substr(start, end - start)});
      start = end;
    }
  }
  return docs;
}

}  // namespace flashnas
