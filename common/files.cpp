#include "common/files.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <signal.h>
#include <unistd.h>

#include "common/error.h"

namespace flashnas {
namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path.string() + ": no such file");
  if (fs::is_directory(path, ec)) throw InputError(path.string() + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string() + ": read failed");
  return ss.str();
}

void write_file_atomic(const fs::path& path, std::string_view data) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(path.string() + ": directory " + dir.string() + " does not exist");
  std::random_device rd;
  const fs::path tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                              std::to_string(rd()));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw IoError(path.string() + ": cannot create temporary file: " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (::fsync(::fileno(f)) == 0) && ok;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    const std::string why = std::strerror(errno);
    fs::remove(tmp, ec);
    throw IoError(path.string() + ": write failed: " + why);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(path.string() + ": cannot rename temporary file into place");
  }
}

void check_output_file(const std::filesystem::path& path, const std::string& flag) {
  std::error_code ec;
  const auto parent = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!std::filesystem::is_directory(parent, ec)) {
    throw InputError(flag + " " + path.string() + ": the folder " + parent.string() + " does not exist");
  }
  if (std::filesystem::is_directory(path, ec)) throw InputError(flag + " " + path.string() + ": is a folder; give a file name");
}

void check_path_name(const std::string& name, const std::string& flag) {
  const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
                  });
  if (!ok) {
    throw InputError(flag + " \"" + name +
                     "\": must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' (it names a folder)");
  }
}

namespace {

constexpr const char* kWorkMark = ".flashnas-work";

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// True when `dir` holds a work mark of a process of this host that has ended.
bool abandoned_work_dir(const std::filesystem::path& dir) {
  std::ifstream in(dir / kWorkMark);
  std::string host;
  long long pid = 0;
  if (!(in >> host >> pid) || host != host_name() || pid <= 0) return false;
  // Our own pid cannot be ours yet (this process has not made it): a leftover of an earlier process.
  return pid == getpid() || (kill(pid_t(pid), 0) != 0 && errno == ESRCH);
}

}  // namespace

std::filesystem::path make_work_dir(const std::filesystem::path& final_dir) {
  namespace fs = std::filesystem;
  const fs::path parent = final_dir.parent_path().empty() ? fs::path(".") : final_dir.parent_path();
  const std::string prefix = final_dir.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && e.is_directory(ec) && abandoned_work_dir(e.path())) fs::remove_all(e.path(), ec);
  }
  const fs::path work = fs::path(final_dir.string() + ".tmp-" + std::to_string(getpid()));
  if (fs::exists(work, ec)) {
    throw Error(work.string() + ": exists and is not flashnas's to remove; move it away and rerun");
  }
  fs::create_directories(work);
  std::ofstream(work / kWorkMark) << host_name() << " " << getpid() << "\n";
  return work;
}

void publish_work_dir(const std::filesystem::path& work, const std::filesystem::path& final_dir) {
  std::filesystem::remove(work / kWorkMark);
  std::filesystem::rename(work, final_dir);
}

}  // namespace flashnas
