#include "common/toml_io.h"

#include <toml++/toml.h>

#include "common/error.h"
#include "common/files.h"

namespace flashnas {
namespace {

json to_json(const toml::node& n, const std::string& source, const std::string& where) {
  if (const auto* t = n.as_table()) {
    json o = json::object();
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      o[key] = to_json(v, source, where.empty() ? key : where + "." + key);
    }
    return o;
  }
  if (const auto* a = n.as_array()) {
    json arr = json::array();
    for (size_t i = 0; i < a->size(); ++i) arr.push_back(to_json(*a->get(i), source, where + "[" + std::to_string(i) + "]"));
    return arr;
  }
  if (const auto* v = n.as_integer()) return v->get();
  if (const auto* v = n.as_floating_point()) return v->get();
  if (const auto* v = n.as_boolean()) return v->get();
  if (const auto* v = n.as_string()) return v->get();
  throw InputError(source + ": field \"" + where + "\": dates and times are not used in flashnas configs");
}

}  // namespace

json parse_toml(std::string_view text, const std::string& source) {
  try {
    const toml::table t = toml::parse(text, source);
    return to_json(t, source, "");
  } catch (const toml::parse_error& e) {
    throw InputError(source + ": TOML parse error at line " + std::to_string(e.source().begin.line) + ", column " +
                     std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
  }
}

json load_toml_file(const std::filesystem::path& path) { return parse_toml(read_file(path), path.string()); }

}  // namespace flashnas
