#include "common/json_io.h"

#include <cmath>

#include "common/error.h"
#include "common/files.h"

namespace flashnas {

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // nlohmann's message is "[json.exception.parse_error.101] parse error at line L, column C: ..."
    // (or out_of_range.406 for a number beyond a double, like 1e999).
    std::string msg = e.what();
    const auto pos = msg.find("] ");
    if (pos != std::string::npos) msg = msg.substr(pos + 2);
    throw InputError(source + ": " + msg);
  }
}

json load_json_file(const std::filesystem::path& path) { return parse_json(read_file(path), path.string()); }

FieldReader::FieldReader(const json& obj, std::string source, std::string where)
    : obj_(obj), source_(std::move(source)), where_(std::move(where)) {
  if (!obj_.is_object()) {
    throw InputError(source_ + ": " + (where_.empty() ? std::string("document") : where_) +
                     ": must be a JSON object, got " + obj_.type_name());
  }
}

std::string FieldReader::path(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }

void FieldReader::fail(const std::string& key, const std::string& what) const {
  throw InputError(source_ + ": field \"" + path(key) + "\": " + what);
}

bool FieldReader::has(const std::string& key) const { return obj_.contains(key); }

const json* FieldReader::member(const std::string& key, bool required) {
  read_.insert(key);
  auto it = obj_.find(key);
  if (it == obj_.end()) {
    if (required) fail(key, "is required");
    return nullptr;
  }
  return &*it;
}

int64_t FieldReader::integer(const std::string& key, std::optional<int64_t> def) {
  const json* v = member(key, !def.has_value());
  if (!v) return *def;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::floor(d) == d && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  fail(key, "must be an integer, got " + describe_value(*v));
}

int64_t FieldReader::positive(const std::string& key, std::optional<int64_t> def) {
  const int64_t v = integer(key, def);
  if (v <= 0) fail(key, "must be a positive integer, got " + std::to_string(v));
  return v;
}

int64_t FieldReader::non_negative(const std::string& key, std::optional<int64_t> def) {
  const int64_t v = integer(key, def);
  if (v < 0) fail(key, "must be a non-negative integer, got " + std::to_string(v));
  return v;
}

int64_t FieldReader::integer_in(const std::string& key, int64_t lo, int64_t hi, std::optional<int64_t> def) {
  const int64_t v = integer(key, def);
  if (v < lo || v > hi) {
    fail(key, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(v));
  }
  return v;
}

double FieldReader::positive_number(const std::string& key, std::optional<double> def) {
  const json* v = member(key, !def.has_value());
  if (!v) return *def;
  if (!v->is_number()) fail(key, "must be a number, got " + describe_value(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d <= 0) fail(key, "must be a positive finite number, got " + describe_value(*v));
  return d;
}

double FieldReader::number_in(const std::string& key, double lo, double hi, std::optional<double> def) {
  const json* v = member(key, !def.has_value());
  if (!v) return *def;
  if (!v->is_number()) fail(key, "must be a number, got " + describe_value(*v));
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    char range[96];
    std::snprintf(range, sizeof range, std::isinf(hi) ? "a finite number >= %g" : "a number in [%g, %g]", lo, hi);
    fail(key, std::string("must be ") + range + ", got " + describe_value(*v));
  }
  return d;
}

std::string describe_value(const json& v) {
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  }
  return v.dump();
}

bool FieldReader::boolean(const std::string& key, std::optional<bool> def) {
  const json* v = member(key, !def.has_value());
  if (!v) return *def;
  if (!v->is_boolean()) fail(key, "must be true or false, got " + v->dump());
  return v->get<bool>();
}

std::string FieldReader::string(const std::string& key, std::optional<std::string> def) {
  const json* v = member(key, !def.has_value());
  if (!v) return *def;
  if (!v->is_string()) fail(key, "must be a string, got " + v->dump());
  return v->get<std::string>();
}

const json& FieldReader::raw(const std::string& key) { return *member(key, true); }

void FieldReader::finish() const {
  for (auto it = obj_.begin(); it != obj_.end(); ++it) {
    if (read_.count(it.key())) continue;
    std::vector<std::string> allowed(read_.begin(), read_.end());
    throw InputError(source_ + ": field \"" + path(it.key()) + "\": unknown field; allowed fields here are " +
                     join_or(allowed));
  }
}

std::string join_or(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? " or " : ", ";
    out += items[i];
  }
  return out;
}

std::string join_comma(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

}  // namespace flashnas
