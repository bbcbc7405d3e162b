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

// A name that becomes a path component (a study's or an experiment's
// folder): 1 to 64 of [A-Za-z0-9._-], not starting with '.', so it can never
// climb out of the folder flashnas owns. InputError naming `flag` otherwise.
void check_path_name(const std::string& name, const std::string& flag);

// A private working folder for an output folder that must appear whole or
// not at all: `<final>.tmp-<pid>`, created holding a mark file that names
// this host and process. Folders of that form that hold the mark of a process
// of this host that no longer runs (what a kill -9 left) are removed first;
// nothing without the mark is ever touched.
std::filesystem::path make_work_dir(const std::filesystem::path& final_dir);
// Removes the mark and renames the work folder to `final_dir`.
void publish_work_dir(const std::filesystem::path& work, const std::filesystem::path& final_dir);

}  // namespace flashnas
