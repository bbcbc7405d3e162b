// JSON parsing and typed field access with messages that name the source,
// the field path and what is allowed.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace flashnas {

using json = nlohmann::json;

// Parses `text`; a syntax error becomes InputError "<source>: parse error at
// line L, column C: ...".
json parse_json(std::string_view text, const std::string& source);

// Reads and parses a JSON file (InputError naming the path on any failure).
json load_json_file(const std::filesystem::path& path);

// Reads the fields of one JSON object, checking types and ranges, and
// remembers which keys were read so that finish() can reject unknown ones.
// `where` is the field path used in messages, e.g. "layers[3]".
class FieldReader {
 public:
  FieldReader(const json& obj, std::string source, std::string where);

  bool has(const std::string& key) const;
  // Integer field; `def` is used when absent (absent and no default: error).
  int64_t integer(const std::string& key, std::optional<int64_t> def = std::nullopt);
  // Integer field that must be > 0.
  int64_t positive(const std::string& key, std::optional<int64_t> def = std::nullopt);
  // Integer field that must be >= 0.
  int64_t non_negative(const std::string& key, std::optional<int64_t> def = std::nullopt);
  // Integer field within [lo, hi] (both inclusive).
  int64_t integer_in(const std::string& key, int64_t lo, int64_t hi, std::optional<int64_t> def = std::nullopt);
  // Number field that must be > 0 (finite).
  double positive_number(const std::string& key, std::optional<double> def = std::nullopt);
  // Finite number field within [lo, hi] (both inclusive; hi may be infinity).
  double number_in(const std::string& key, double lo, double hi, std::optional<double> def = std::nullopt);
  bool boolean(const std::string& key, std::optional<bool> def = std::nullopt);
  std::string string(const std::string& key, std::optional<std::string> def = std::nullopt);
  // A raw member (must be present).
  const json& raw(const std::string& key);
  // Throws for any key that was not read, listing the allowed keys.
  void finish() const;

  // "<source>: <where>.<key>: <what>" as an InputError.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  std::string path(const std::string& key) const;

 private:
  const json* member(const std::string& key, bool required);
  const json& obj_;
  std::string source_;
  std::string where_;
  std::set<std::string> read_;
};

// A value as a message shows it: JSON text, but NaN and infinities (which a
// TOML file may hold and JSON text cannot) by name.
std::string describe_value(const json& v);

// "a, b or c" and "a, b, c" for messages.
std::string join_or(const std::vector<std::string>& items);
std::string join_comma(const std::vector<std::string>& items);

}  // namespace flashnas
