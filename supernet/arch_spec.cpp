#include "supernet/arch_spec.h"

#include "common/error.h"
#include "common/files.h"
#include "common/sha256.h"
#include "supernet/registry.h"

namespace flashnas {

ArchSpec ArchSpec::from_json(const json& doc, const std::string& source) {
  FieldReader top(doc, source, "");
  ArchSpec a;
  const int64_t format = top.integer("format", kArchFormat);
  if (format != kArchFormat) {
    top.fail("format", "unsupported ArchSpec format " + std::to_string(format) + "; this flashnas reads format " +
                           std::to_string(kArchFormat));
  }
  a.name = top.string("name", "");
  a.vocab_size = top.integer_in("vocab_size", 1, kMaxVocab, 256);
  a.d_model = top.integer_in("d_model", 1, kMaxDModel);
  a.n_meta_tokens = top.integer_in("n_meta_tokens", 0, kMaxMetaTokens, 0);
  a.tie_embeddings = top.boolean("tie_embeddings", false);
  a.norm_eps = top.positive_number("norm_eps", 1e-5);

  json op_defaults = json::object();
  if (top.has("op_defaults")) {
    op_defaults = top.raw("op_defaults");
    if (!op_defaults.is_object()) top.fail("op_defaults", "must be an object of {\"<operator>\": {...}}");
    for (auto it = op_defaults.begin(); it != op_defaults.end(); ++it) {
      find_op_kind(it.key(), source + ": field \"op_defaults." + it.key() + "\"");
      if (!it.value().is_object()) top.fail("op_defaults." + it.key(), "must be an object of hyperparameters");
      if (it.value().contains("type")) top.fail("op_defaults." + it.key() + ".type", "is not allowed here");
    }
  }

  const json& layers = top.raw("layers");
  if (!layers.is_array()) top.fail("layers", "must be an array of sublayers, got " + std::string(layers.type_name()));
  if (layers.empty()) top.fail("layers", "must not be empty; give at least one sublayer");
  if (int64_t(layers.size()) > kMaxSublayers) {
    top.fail("layers", "holds " + std::to_string(layers.size()) + " sublayers; at most " + std::to_string(kMaxSublayers));
  }
  top.finish();

  for (size_t i = 0; i < layers.size(); ++i) {
    const std::string where = "layers[" + std::to_string(i) + "]";
    json layer = layers[i];
    if (layer.is_object() && layer.contains("type") && layer["type"].is_string()) {
      const std::string type = layer["type"].get<std::string>();
      if (op_defaults.contains(type)) {
        for (auto it = op_defaults[type].begin(); it != op_defaults[type].end(); ++it) {
          if (!layer.contains(it.key())) layer[it.key()] = it.value();
        }
      }
    }
    a.layers.push_back(parse_layer(layer, a.d_model, source, where));
  }
  return a;
}

LayerSpec ArchSpec::parse_layer(const json& layer, int64_t d_model, const std::string& source,
                               const std::string& where) {
  if (!layer.is_object()) {
    throw InputError(source + ": field \"" + where + "\": must be an object like {\"type\": \"attn\", ...}, got " +
                     layer.dump());
  }
  FieldReader fields(layer, source, where);
  const std::string type = fields.string("type");
  const OpKind& kind = find_op_kind(type, source + ": field \"" + where + ".type\"");
  json hp = canonical_hp(kind, fields, ModelDims{d_model});
  fields.finish();
  for (auto it = hp.begin(); it != hp.end(); ++it) {
    if (it.value().is_number_integer() && it.value().get<int64_t>() > kMaxHyperparameter) {
      fields.fail(it.key(), "must be at most " + std::to_string(kMaxHyperparameter) + ", got " +
                                std::to_string(it.value().get<int64_t>()));
    }
  }
  return LayerSpec{type, std::move(hp)};
}

ArchSpec ArchSpec::parse(const std::string& text, const std::string& source) {
  return from_json(parse_json(text, source), source);
}

ArchSpec ArchSpec::load(const std::filesystem::path& path) { return parse(read_file(path), path.string()); }

json ArchSpec::to_json() const {
  json doc;
  doc["format"] = kArchFormat;
  if (!name.empty()) doc["name"] = name;
  doc["vocab_size"] = vocab_size;
  doc["d_model"] = d_model;
  doc["n_meta_tokens"] = n_meta_tokens;
  doc["tie_embeddings"] = tie_embeddings;
  doc["norm_eps"] = norm_eps;
  json arr = json::array();
  for (const auto& l : layers) {
    json o = l.hp;
    o["type"] = l.type;
    arr.push_back(std::move(o));
  }
  doc["layers"] = std::move(arr);
  return doc;
}

std::string ArchSpec::canonical_text() const {
  json doc = to_json();
  doc.erase("name");
  return doc.dump();  // nlohmann's object keys are sorted: the text is canonical
}

std::string ArchSpec::hash() const { return sha256_hex(canonical_text()); }

void ArchSpec::save(const std::filesystem::path& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace flashnas
