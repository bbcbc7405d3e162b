#include "supernet/registry.h"

#include <optional>
#include <sstream>

#include "common/error.h"
#include "supernet/ops/op_kind.h"

// Every operator, registered here and nowhere else: one line per operator,
// in registration order (the order `flashnas arch ops` lists them).
// An operator's file pair in supernet/ops/ defines
// `OpKind <name>_kind()`; the build picks the files up by itself.
#define FLASHNAS_OPERATORS(X) \
  X(attn)                     \
  X(swa)                      \
  X(mamba2)                   \
  X(deltanet)                 \
  X(gdn)                      \
  X(gla)                      \
  X(shortconv)                \
  X(rwkv7)                    \
  X(ffn)

namespace flashnas {

#define FLASHNAS_DECLARE_KIND(name) OpKind name##_kind();
FLASHNAS_OPERATORS(FLASHNAS_DECLARE_KIND)
#undef FLASHNAS_DECLARE_KIND

const std::vector<OpKind>& op_kinds() {
#define FLASHNAS_CALL_KIND(name) name##_kind(),
  static const std::vector<OpKind> kinds = {FLASHNAS_OPERATORS(FLASHNAS_CALL_KIND)};
#undef FLASHNAS_CALL_KIND
  return kinds;
}

HpField int_field(std::string key, std::string meaning, int64_t def, int64_t min) {
  return int_field(std::move(key), std::move(meaning), std::to_string(def),
                   [def](const json&, const ModelDims&, FieldReader&) { return def; }, min);
}

HpField int_field(std::string key, std::string meaning, std::string default_doc,
                  std::function<int64_t(const json&, const ModelDims&, FieldReader&)> def, int64_t min) {
  HpField f{std::move(key), HpField::Type::integer, std::move(meaning), std::move(default_doc), nullptr, min};
  f.default_value = [def = std::move(def)](const json& before, const ModelDims& dims, FieldReader& r) {
    return json(def(before, dims, r));
  };
  return f;
}

HpField number_field(std::string key, std::string meaning, double def) {
  std::ostringstream doc;
  doc << def;
  return HpField{std::move(key), HpField::Type::positive_number, std::move(meaning), doc.str(),
                 [def](const json&, const ModelDims&, FieldReader&) { return json(def); }, 1};
}

HpField bool_field(std::string key, std::string meaning, bool def) {
  return HpField{std::move(key), HpField::Type::boolean, std::move(meaning), def ? "true" : "false",
                 [def](const json&, const ModelDims&, FieldReader&) { return json(def); }, 1};
}

json canonical_hp(const OpKind& kind, FieldReader& f, const ModelDims& dims) {
  json hp = json::object();
  for (const HpField& field : kind.fields) {
    // A default is computed only when the key is absent: it may refuse.
    const json def = f.has(field.key) || !field.default_value ? json() : field.default_value(hp, dims, f);
    switch (field.type) {
      case HpField::Type::integer: {
        const std::optional<int64_t> d = def.is_null() ? std::nullopt : std::optional<int64_t>(def.get<int64_t>());
        const int64_t v = field.min == 0 ? f.non_negative(field.key, d) : field.min < 0 ? f.integer(field.key, d)
                                                                                       : f.positive(field.key, d);
        if (v < field.min) f.fail(field.key, "must be at least " + std::to_string(field.min) + ", got " + std::to_string(v));
        hp[field.key] = v;
        break;
      }
      case HpField::Type::positive_number:
        hp[field.key] = f.positive_number(field.key, def.is_null() ? std::nullopt : std::optional<double>(def.get<double>()));
        break;
      case HpField::Type::boolean:
        hp[field.key] = f.boolean(field.key, def.is_null() ? std::nullopt : std::optional<bool>(def.get<bool>()));
        break;
    }
  }
  if (kind.check) kind.check(hp, dims, f);
  return hp;
}

json describe_op_kinds() {
  json all = json::array();
  for (const auto& k : op_kinds()) {
    json defaults = json::object(), fields = json::array();
    for (const auto& f : k.fields) {
      defaults[f.key] = f.default_doc;
      fields.push_back({{"key", f.key}, {"meaning", f.meaning}, {"default", f.default_doc}});
    }
    all.push_back({{"name", k.name}, {"description", k.description}, {"defaults", defaults}, {"fields", fields},
                   {"transformers", k.transformers}});
  }
  return all;
}

std::string op_kinds_text() {
  std::string text;
  for (const auto& k : op_kinds()) {
    text += k.name + std::string(k.name.size() < 9 ? 9 - k.name.size() : 1, ' ') + k.description + "\n";
    for (const auto& f : k.fields) {
      text += "           " + f.key + std::string(f.key.size() < 13 ? 13 - f.key.size() : 1, ' ') + f.meaning +
              "; default " + f.default_doc + "\n";
    }
  }
  return text;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const auto& k : op_kinds()) names.push_back(k.name);
  return names;
}

std::shared_ptr<Operator> make_operator(const std::string& type, const json& hp, int64_t d_model) {
  return find_op_kind(type, "operator").create(hp, ModelDims{d_model});
}

const OpKind& find_op_kind(const std::string& name, const std::string& where) {
  for (const auto& k : op_kinds()) {
    if (k.name == name) return k;
  }
  throw InputError(where + ": unknown operator \"" + name + "\"; valid operators: " + join_comma(op_names()));
}

}  // namespace flashnas
