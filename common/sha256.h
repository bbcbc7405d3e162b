// SHA-256 (FIPS 180-4). Used for stable, machine-independent content hashes
// (ArchSpec hashes, cache keys). Not for security.
#pragma once
#include <string>
#include <string_view>

namespace flashnas {

// Lower-case hex digest (64 characters) of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace flashnas
