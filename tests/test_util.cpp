#include "tests/test_util.h"

#include <sqlite3.h>

#include "common/error.h"
#include "train/corpus.h"
#include "train/token_file.h"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace flashnas::test {

std::string source_dir() { return FLASHNAS_SOURCE_DIR; }
std::string flashnas_bin() { return FLASHNAS_BIN; }

namespace fs = std::filesystem;

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(b.to(torch::kFloat64).abs().max().item<double>(), 1e-30);
  return max_abs_diff(a, b) / scale;
}

double numeric_tolerance(torch::ScalarType dtype) { return dtype == torch::kFloat64 ? 1e-10 : 1e-4; }

double numeric_error(const torch::Tensor& got, const torch::Tensor& want) {
  return got.scalar_type() == torch::kFloat64 && want.scalar_type() == torch::kFloat64 ? max_abs_diff(got, want)
                                                                                         : max_rel_diff(got, want);
}

std::string input_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("flashnas-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<std::string> TempDir::entries() const {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

void TempDir::write(const std::string& name, const std::string& text) const {
  std::ofstream(path_ / name, std::ios::binary) << text;
}

namespace {
std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}
}  // namespace

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliResult run_cli(const std::vector<std::string>& args, const std::vector<std::string>& wrapper) {
  TempDir tmp;
  std::string cmd;
  for (const auto& w : wrapper) cmd += quote(w) + " ";
  cmd += quote(FLASHNAS_BIN);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote((tmp / "out").string()) + " 2>" + quote((tmp / "err").string()) + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(tmp / "out");
  r.err = slurp(tmp / "err");
  return r;
}

std::map<std::string, std::string> file_tree(const std::filesystem::path& root) {
  std::map<std::string, std::string> m;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    m[std::filesystem::relative(e.path(), root).string()] = e.is_regular_file() ? slurp(e.path()) : "<folder>";
  }
  return m;
}

}  // namespace flashnas::test

namespace flashnas::test {

double gradcheck_max_rel_err(const std::function<torch::Tensor()>& loss, const std::vector<torch::Tensor>& wrt,
                             double h, int64_t max_entries) {
  for (auto t : wrt) {
    if (t.grad().defined()) t.mutable_grad().zero_();
  }
  loss().backward();
  double worst = 0;
  torch::NoGradGuard no_grad;
  for (auto t : wrt) {
    auto g = t.grad().reshape(-1);
    auto flat = t.view(-1);
    const int64_t n = flat.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_entries);
    for (int64_t i = 0; i < n; i += stride) {
      const double orig = flat[i].item<double>();
      flat[i] = orig + h;
      const double up = loss().item<double>();
      flat[i] = orig - h;
      const double down = loss().item<double>();
      flat[i] = orig;
      const double fd = (up - down) / (2 * h);
      const double ad = g[i].item<double>();
      worst = std::max(worst, std::abs(fd - ad) / std::max(1.0, std::abs(fd)));
    }
  }
  return worst;
}

void exec_sql(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) {
    sqlite3_close(h);
    throw std::runtime_error(db.string() + ": cannot open");
  }
  char* err = nullptr;
  const int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  const std::string why = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(h);
  if (rc != SQLITE_OK) throw std::runtime_error(db.string() + ": " + why);
}

void poke(const fs::path& path, size_t offset, size_t n, char byte) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  if (!f.good()) throw std::runtime_error(path.string() + ": cannot open to poke");
  f.seekp(std::streamoff(offset));
  const std::string bytes(n, byte);
  f.write(bytes.data(), std::streamsize(n));
}

size_t first_token_offset(const fs::path& path) {
  TokenFile f(path);
  std::ifstream in(path, std::ios::binary);
  uint64_t meta_len = 0;
  in.seekg(40);
  in.read(reinterpret_cast<char*>(&meta_len), 8);
  size_t pos = 48 + meta_len;
  pos += (8 - pos % 8) % 8;
  return pos + 8 * size_t(f.num_docs() + 1) + 8 * size_t(f.num_docs());
}

fs::path tiny_token_file(const TempDir& dir) {
  fs::create_directories(dir / "text");
  std::mt19937 rng(5);
  for (int d = 0; d < 6; ++d) {
    std::string text;
    for (int i = 0; i < 400; ++i) text += "the quick brown fox " + std::to_string(rng() % 97) + " jumps. ";
    dir.write("text/doc" + std::to_string(d) + ".txt", text);
  }
  const fs::path out = dir / "data.tokens";
  write_token_file(out, read_corpus(dir / "text"), *make_byte_tokenizer());
  return out;
}

}  // namespace flashnas::test
