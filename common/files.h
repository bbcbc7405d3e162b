// File helpers: whole-file reads with clear errors, atomic writes.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace flashnas {

// Reads a whole file. Throws InputError naming the path if it is missing,
// a directory, or unreadable.
std::string read_file(const std::filesystem::path& path);

// Writes `data` to `path` atomically: a temporary file in the same directory
// is written, flushed and renamed over `path`. On any failure the temporary is
// removed and `path` is left as it was. Throws Error naming the path.
void write_file_atomic(const std::filesystem::path& path, std::string_view data);

// InputError "<flag> <path>: ..." unless `path` can be written: its folder
// exists and `path` is not a folder. Call it before long work.
void check_output_file(const std::filesystem::path& path, const std::string& flag);

}  // namespace flashnas
