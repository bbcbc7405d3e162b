#include "train/sp_tokenizer_json.h"

#include <sentencepiece_processor.h>

#include <cmath>
#include <cstring>
#include <string_view>

#include "common/error.h"
#include "common/files.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {

// The few fields of the model's protocol buffer (sentencepiece_model.proto)
// that the processor does not expose: the normalizer and the model type.
// Protocol buffer wire format: a varint key (field << 3 | wire type), then a
// varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or
// 4 bytes (5).
struct Wire {
  std::string_view b;
  size_t i = 0;
  const std::string& where;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= b.size()) throw InputError(where + ": the SentencePiece model ends inside a number");
      const auto c = static_cast<unsigned char>(b[i++]);
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    throw InputError(where + ": the SentencePiece model holds a malformed number");
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (n > b.size() - i) throw InputError(where + ": the SentencePiece model ends inside a field");
    const std::string_view v = b.substr(i, n);
    i += n;
    return v;
  }
  void skip(int type) {
    if (type == 0) varint();
    else if (type == 1) i += 8;
    else if (type == 2) bytes();
    else if (type == 5) i += 4;
    else throw InputError(where + ": the SentencePiece model holds an unknown field type " + std::to_string(type));
    if (i > b.size()) throw InputError(where + ": the SentencePiece model ends inside a field");
  }
};

struct Spec {
  int model_type = 1;  // TrainerSpec.model_type: UNIGRAM = 1, BPE = 2, WORD = 3, CHAR = 4
  bool split_by_whitespace = true;
  bool treat_whitespace_as_suffix = false;
  std::string normalizer;         // NormalizerSpec.name
  std::string charsmap;           // NormalizerSpec.precompiled_charsmap
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
};

Spec read_spec(std::string_view proto, const std::string& where) {
  Spec s;
  Wire w{proto, 0, where};
  while (w.i < proto.size()) {
    const uint64_t key = w.varint();
    const int field = int(key >> 3), type = int(key & 7);
    if ((field == 2 || field == 3) && type == 2) {
      Wire sub{w.bytes(), 0, where};
      while (sub.i < sub.b.size()) {
        const uint64_t k = sub.varint();
        const int f = int(k >> 3), t = int(k & 7);
        if (field == 2 && f == 3 && t == 0) s.model_type = int(sub.varint());
        else if (field == 2 && f == 22 && t == 0) s.split_by_whitespace = sub.varint() != 0;
        else if (field == 2 && f == 24 && t == 0) s.treat_whitespace_as_suffix = sub.varint() != 0;
        else if (field == 3 && f == 1 && t == 2) s.normalizer = std::string(sub.bytes());
        else if (field == 3 && f == 2 && t == 2) s.charsmap = std::string(sub.bytes());
        else if (field == 3 && f == 3 && t == 0) s.add_dummy_prefix = sub.varint() != 0;
        else if (field == 3 && f == 4 && t == 0) s.remove_extra_whitespaces = sub.varint() != 0;
        else if (field == 3 && f == 5 && t == 0) s.escape_whitespaces = sub.varint() != 0;
        else sub.skip(t);
      }
    } else {
      w.skip(type);
    }
  }
  return s;
}

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += {t[v >> 18], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

const char* kSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's whitespace symbol

}  // namespace

json sentencepiece_tokenizer_json(const fs::path& model_file) {
  const std::string where = model_file.string();
  const std::string bytes = read_file(model_file);
  sentencepiece::SentencePieceProcessor sp;
  if (!sp.LoadFromSerializedProto(bytes).ok()) throw InputError(where + ": not a SentencePiece model");
  const Spec s = read_spec(bytes, where);
  auto refuse = [&](const std::string& why) {
    throw InputError(where + ": " + why + "; tokenizer.json can express SentencePiece unigram models that split on "
                     "whitespace with a prefix symbol (as flashnas data tokenizer trains them)");
  };
  if (s.model_type != 1) refuse("model type " + std::to_string(s.model_type) + " is not unigram");
  if (!s.escape_whitespaces || !s.split_by_whitespace || s.treat_whitespace_as_suffix) {
    refuse("its whitespace handling is unusual (escape, split or suffix)");
  }

  json vocab = json::array(), added = json::array();
  bool byte_fallback = false;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    const std::string piece = sp.IdToPiece(id);
    double score = sp.GetScore(id);
    if (sp.IsControl(id) || sp.IsUnused(id)) {
      // Never part of a segmentation in SentencePiece: kept for their ids,
      // scored so that the unigram search never picks them.
      score = -1e9;
      if (sp.IsControl(id)) {
        added.push_back({{"id", id}, {"content", piece}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", false}, {"special", true}});
      }
    }
    if (sp.IsUnknown(id)) score = 0;
    byte_fallback = byte_fallback || sp.IsByte(id);
    vocab.push_back(json::array({piece, score}));
  }
  // Normalizer: the model's own character map (none for "identity"), then
  // SentencePiece's whitespace rules, then its whitespace symbol.
  json norm = json::array();
  if (!s.charsmap.empty()) norm.push_back({{"type", "Precompiled"}, {"precompiled_charsmap", base64(s.charsmap)}});
  if (s.remove_extra_whitespaces) {
    norm.push_back({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}});
    norm.push_back({{"type", "Replace"}, {"pattern", {{"Regex", " {2,}"}}}, {"content", " "}});
  }
  if (s.add_dummy_prefix) norm.push_back({{"type", "Prepend"}, {"prepend", kSpace}});
  norm.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}});
  json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}}});
  if (byte_fallback) decoders.push_back({{"type", "ByteFallback"}});
  decoders.push_back({{"type", "Fuse"}});
  if (s.add_dummy_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", added},
              {"normalizer", {{"type", "Sequence"}, {"normalizers", norm}}},
              // Words begin at every whitespace symbol, as SentencePiece splits them.
              {"pre_tokenizer",
               {{"type", "Metaspace"}, {"replacement", kSpace}, {"prepend_scheme", "never"}, {"split", true}}},
              {"post_processor", nullptr},
              {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
              {"model",
               {{"type", "Unigram"}, {"unk_id", sp.unk_id()}, {"vocab", vocab}, {"byte_fallback", byte_fallback}}}};
}

}  // namespace flashnas
