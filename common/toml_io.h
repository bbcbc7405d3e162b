// TOML configs (search spaces, budgets) read into the same JSON values the
// rest of flashnas validates with FieldReader, so messages name the file and
// the field path the same way for both formats.
#pragma once
#include <filesystem>
#include <string_view>

#include "common/json_io.h"

namespace flashnas {

// Parses TOML text; a syntax error becomes InputError
// "<source>: TOML parse error at line L, column C: ...". Tables become JSON
// objects, arrays arrays; integers stay integers; dates are refused.
json parse_toml(std::string_view text, const std::string& source);
// Reads and parses a TOML file (InputError naming the path on any failure).
json load_toml_file(const std::filesystem::path& path);

}  // namespace flashnas
