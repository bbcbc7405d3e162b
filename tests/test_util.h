// Helpers shared by the test binaries.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace flashnas::test {

// The source tree, and the flashnas binary of this build. Only test_util.cpp
// is compiled with their paths, so that no other test object depends on where
// the clone or the build folder is (and every other one is shared through
// ccache between clones and with the CUDA build).
std::string source_dir();
std::string flashnas_bin();

// max |a - b|
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

// The numerics suites' acceptance bound: float64 1e-10 absolute, float32 1e-4
// relative to the reference's scale (why: see the comments atop test_ops.cpp
// and test_mixers.cpp), and the matching error measure.
double numeric_tolerance(torch::ScalarType dtype);
double numeric_error(const torch::Tensor& got, const torch::Tensor& want);

// Runs fn expecting flashnas::InputError (or, for error_of, any exception);
// returns its message, or records a test failure and returns "".
std::string input_error_of(const std::function<void()>& fn);
std::string error_of(const std::function<void()>& fn);
// max |a - b| / max(max |b|, tiny): error relative to the reference's scale.
double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b);

// A fresh empty directory under the test temp dir, removed by the caller's
// TempDir destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Names of the entries in the directory (to check nothing was written).
  std::vector<std::string> entries() const;
  void write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

// A small byte-level token file in `dir` (6 documents of repetitive text,
// about 100 KB): fast training data for search and proxy tests.
std::filesystem::path tiny_token_file(const TempDir& dir);

// Overwrites `n` bytes of `path` at `offset` with `byte` (a damaged file, as a
// user's disk might make it); throws when the file cannot be opened.
void poke(const std::filesystem::path& path, size_t offset, size_t n, char byte);
// Runs SQL on a SQLite file (made if absent), as a user's tools or disk might
// change a study database; throws std::runtime_error naming the file on failure.
void exec_sql(const std::filesystem::path& db, const std::string& sql);
// The byte offset of a token file's first token (train/token_file.h's layout).
size_t first_token_offset(const std::filesystem::path& path);

// A file's whole contents ("" when it cannot be read).
std::string slurp(const std::filesystem::path& p);

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the flashnas binary with `args` (shell-quoted here), capturing output;
// `wrapper` (a command and its arguments, e.g. unshare ...) runs it.
CliResult run_cli(const std::vector<std::string>& args, const std::vector<std::string>& wrapper = {});

// Every file and folder under `root`, with each file's contents ("<folder>"
// for folders): what "the command changed nothing" compares.
std::map<std::string, std::string> file_tree(const std::filesystem::path& root);

}  // namespace flashnas::test

namespace flashnas::test {

// Largest relative error between autograd gradients of `loss()` with respect
// to each tensor in `wrt` (float64, requires_grad) and central finite
// differences with step `h`, over at most `max_entries` entries per tensor.
double gradcheck_max_rel_err(const std::function<torch::Tensor()>& loss, const std::vector<torch::Tensor>& wrt,
                             double h = 1e-6, int64_t max_entries = 64);

}  // namespace flashnas::test
