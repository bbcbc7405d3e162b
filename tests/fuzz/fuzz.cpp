#include "tests/fuzz/fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <system_error>

#include "common/error.h"
#include "common/files.h"

namespace flashnas::fuzz {

namespace fs = std::filesystem;

namespace {
std::map<std::string, TargetFn>& table() {
  static std::map<std::string, TargetFn> t;
  return t;
}
}  // namespace

bool register_target(const char* name, TargetFn fn) {
  table()[name] = fn;
  return true;
}

const std::map<std::string, TargetFn>& targets() { return table(); }

const fs::path& scratch_dir() {
  static const fs::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/flashnas-fuzz-XXXXXX";
    if (!mkdtemp(pattern.data())) {
      std::perror("flashnas fuzz: cannot make a scratch folder");
      std::abort();
    }
    static const fs::path made = pattern;
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(made, ec);
    });
    return made;
  }();
  return dir;
}

fs::path write_input(const std::string& name, const uint8_t* data, size_t size) {
  const fs::path p = scratch_dir() / name;
  write_file_atomic(p, std::string_view(reinterpret_cast<const char*>(data), size));
  return p;
}

namespace {
long g_refusals = 0;
std::string g_last_refusal;
}  // namespace

long refusals() { return g_refusals; }
const std::string& last_refusal() { return g_last_refusal; }

void guard(const char* target, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    // The reader refused the input by name: the expected outcome for bad bytes.
    ++g_refusals;
    g_last_refusal = e.what();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flashnas fuzz %s: a reader threw something other than InputError: %s\n", target, e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "flashnas fuzz %s: a reader threw a non-standard exception\n", target);
    std::abort();
  }
}

}  // namespace flashnas::fuzz
