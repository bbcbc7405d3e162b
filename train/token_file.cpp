#include "train/token_file.h"

#include <algorithm>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "common/json_io.h"
#include "train/task_data.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {
constexpr char kMagic[8] = {'F', 'N', 'T', 'O', 'K', 'E', 'N', 'S'};
constexpr uint32_t kTextVersion = 1, kTaskVersion = 2;
constexpr size_t kFixedHeader = 48;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void pad8(std::string& out) { out.append((8 - out.size() % 8) % 8, '\0'); }
}  // namespace

int64_t write_token_file(const fs::path& out, const std::vector<Document>& docs, const Tokenizer& tokenizer,
                         const json& extra_meta, const std::string& model_name) {
  if (docs.empty()) throw InputError(out.string() + ": no documents to write");
  const int64_t vocab = tokenizer.vocab_size();
  const uint32_t width = vocab <= 65536 ? 2 : 4;
  const bool task = docs.front().completion_at >= 0;
  std::vector<uint64_t> offsets = {0}, bytes, completion_bytes;
  std::string tokens, mask;
  auto add = [&](const std::vector<int32_t>& ids, char m) {
    for (int32_t id : ids) {
      if (width == 2) put<uint16_t>(tokens, static_cast<uint16_t>(id));
      else put<uint32_t>(tokens, static_cast<uint32_t>(id));
    }
    if (task) mask.append(ids.size(), m);
  };
  for (const auto& d : docs) {
    if ((d.completion_at >= 0) != task || d.completion_at > static_cast<int64_t>(d.text.size())) {
      throw Error(out.string() + ": documents mix task records and plain text");
    }
    size_t n = 0;
    if (task) {
      const TaskTokens t = encode_task_record(tokenizer, d);
      add(t.prompt, 0);
      add(t.completion, 1);
      n = t.prompt.size() + t.completion.size();
      completion_bytes.push_back(d.text.size() - size_t(d.completion_at));
    } else {
      const auto ids = tokenizer.encode(d.text);
      add(ids, 0);
      n = ids.size();
    }
    offsets.push_back(offsets.back() + n);
    bytes.push_back(d.text.size());
  }
  json meta = extra_meta;
  meta["tokenizer"] = tokenizer.describe(model_name);
  const std::string meta_text = meta.dump();
  std::string file(kMagic, 8);
  put<uint32_t>(file, task ? kTaskVersion : kTextVersion);
  put<uint32_t>(file, width);
  put<uint64_t>(file, static_cast<uint64_t>(vocab));
  put<uint64_t>(file, offsets.back());
  put<uint64_t>(file, docs.size());
  put<uint64_t>(file, meta_text.size());
  file += meta_text;
  pad8(file);
  for (uint64_t o : offsets) put<uint64_t>(file, o);
  for (uint64_t b : bytes) put<uint64_t>(file, b);
  for (uint64_t b : completion_bytes) put<uint64_t>(file, b);
  file += tokens;
  file += mask;
  write_file_atomic(out, file);
  return static_cast<int64_t>(offsets.back());
}

bool is_token_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char head[8] = {0};
  const size_t n = std::fread(head, 1, 8, f);
  std::fclose(f);
  return n == 8 && std::memcmp(head, kMagic, 8) == 0;
}

TokenFile::TokenFile(const fs::path& path) : path_(path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(name + ": cannot open token file: " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  map_size_ = static_cast<size_t>(st.st_size);
  if (map_size_ < kFixedHeader) {
    ::close(fd);
    throw InputError(name + ": not a flashnas token file (" + std::to_string(map_size_) +
                     " bytes, smaller than the header)");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw InputError(name + ": cannot map token file");
  }
  const auto* base = static_cast<const unsigned char*>(map_);
  auto fail = [&](const std::string& why) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw InputError(name + ": " + why);
  };
  if (std::memcmp(base, kMagic, 8) != 0) fail("not a flashnas token file (bad magic)");
  uint32_t version, width;
  uint64_t vocab, n_tokens, n_docs, meta_len;
  std::memcpy(&version, base + 8, 4);
  std::memcpy(&width, base + 12, 4);
  std::memcpy(&vocab, base + 16, 8);
  std::memcpy(&n_tokens, base + 24, 8);
  std::memcpy(&n_docs, base + 32, 8);
  std::memcpy(&meta_len, base + 40, 8);
  if (version != kTextVersion && version != kTaskVersion) {
    fail("unsupported token file version " + std::to_string(version) + " (this build reads 1 and 2)");
  }
  const bool task = version == kTaskVersion;
  if (width != 2 && width != 4) fail("bad token width " + std::to_string(width));
  if (vocab == 0 || vocab > (uint64_t(1) << 31)) {
    fail("vocabulary size " + std::to_string(vocab) + " in the header: must be 1 to 2^31; the file is corrupt");
  }
  if (width == 2 && vocab > 65536) fail("vocabulary size " + std::to_string(vocab) + " does not fit 2-byte tokens; the file is corrupt");
  // Counts are checked against the file's size before any arithmetic with them.
  if (meta_len > map_size_ || n_docs > map_size_ / 16 || n_tokens > map_size_ / width) {
    fail("header counts (metadata " + std::to_string(meta_len) + " bytes, " + std::to_string(n_docs) + " documents, " +
         std::to_string(n_tokens) + " tokens) exceed the file's " + std::to_string(map_size_) + " bytes; the file is truncated or corrupt");
  }
  size_t pos = kFixedHeader + meta_len;
  if (pos > map_size_) fail("truncated header");
  try {
    meta_ = json::parse(std::string(reinterpret_cast<const char*>(base + kFixedHeader), meta_len));
  } catch (const std::exception&) {
    fail("corrupt metadata");
  }
  pos += (8 - pos % 8) % 8;
  const size_t need = pos + 8 * (n_docs + 1) + 8 * n_docs * (task ? 2 : 1) + width * n_tokens + (task ? n_tokens : 0);
  if (need != map_size_) {
    fail("size " + std::to_string(map_size_) + " bytes does not match its header (" + std::to_string(need) +
         "); the file is truncated or corrupt");
  }
  offsets_ = reinterpret_cast<const uint64_t*>(base + pos);
  bytes_ = offsets_ + n_docs + 1;
  if (task) completion_bytes_ = bytes_ + n_docs;
  tokens_ = reinterpret_cast<const unsigned char*>(bytes_ + n_docs * (task ? 2 : 1));
  if (task) mask_ = tokens_ + width * n_tokens;
  if (offsets_[n_docs] != n_tokens) fail("document table does not end at the token count");
  for (uint64_t d = 0; d < n_docs; ++d) {
    if (offsets_[d] > offsets_[d + 1]) fail("document table entry " + std::to_string(d) + " runs backwards; the file is corrupt");
  }
  if (task) {
    // Each document's completion is its tail: mask bytes 0...0 1...1.
    for (uint64_t d = 0; d < n_docs; ++d) {
      bool seen = false;
      for (uint64_t i = offsets_[d]; i < offsets_[d + 1]; ++i) {
        if (mask_[i] > 1 || (seen && mask_[i] == 0)) {
          fail("completion mask of document " + std::to_string(d) + " is damaged at token " + std::to_string(i));
        }
        seen = seen || mask_[i] == 1;
      }
    }
  }
  vocab_ = static_cast<int64_t>(vocab);
  n_tokens_ = static_cast<int64_t>(n_tokens);
  n_docs_ = static_cast<int64_t>(n_docs);
  width_ = width;
}

TokenFile::~TokenFile() {
  if (map_) ::munmap(map_, map_size_);
}

void TokenFile::read(int64_t begin, int64_t n, int64_t* out) const {
  if (begin < 0 || begin + n > n_tokens_) throw Error(path_.string() + ": token range out of bounds");
  int64_t top = 0;
  if (width_ == 2) {
    const auto* p = reinterpret_cast<const uint16_t*>(tokens_) + begin;
    for (int64_t i = 0; i < n; ++i) top = std::max<int64_t>(top, out[i] = p[i]);
  } else {
    const auto* p = reinterpret_cast<const uint32_t*>(tokens_) + begin;
    for (int64_t i = 0; i < n; ++i) top = std::max<int64_t>(top, out[i] = p[i]);
  }
  // Every read checks the ids (one compare a token), so a damaged file is
  // refused where it is damaged instead of indexing past an embedding.
  if (top >= vocab_) {
    int64_t at = 0;
    while (out[at] < vocab_) ++at;
    throw InputError(path_.string() + ": token " + std::to_string(begin + at) + " is id " + std::to_string(out[at]) +
                     ", outside the vocabulary of " + std::to_string(vocab_) + " in its header; the file is corrupt");
  }
}

int64_t TokenFile::doc_completion_tokens(int64_t d) const {
  if (!mask_) return 0;
  int64_t n = 0;
  for (int64_t i = doc_end(d) - 1; i >= doc_begin(d) && mask_[i] == 1; --i) ++n;
  return n;
}

void TokenFile::read_mask(int64_t begin, int64_t n, uint8_t* out) const {
  if (begin < 0 || begin + n > n_tokens_) throw Error(path_.string() + ": mask range out of bounds");
  if (mask_) std::memcpy(out, mask_ + begin, size_t(n));
  else std::memset(out, 0, size_t(n));
}

void TokenFile::check_ids() const {
  std::vector<int64_t> buf(size_t(1) << 16);
  for (int64_t b = 0; b < n_tokens_; b += int64_t(buf.size())) read(b, std::min<int64_t>(int64_t(buf.size()), n_tokens_ - b), buf.data());
}

}  // namespace flashnas
