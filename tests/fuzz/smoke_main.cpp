// fuzz_smoke: the fuzz targets without libFuzzer, for the test command.
//   fuzz_smoke --list
//   fuzz_smoke TARGET [--mutations N] [--accept DIR]... DIR...
// Runs TARGET on every file of the folders (the committed seed corpus and
// regression cases), then on N deterministic mutants of each (bytes flipped,
// inserted, deleted, duplicated, truncated; SplitMix64 with a fixed seed, so
// every run replays the same inputs). A finding aborts, as under libFuzzer.
// Every file of an --accept folder (the seed corpus) must also be accepted
// by the reader: a seed it refuses fails the run (exit 1) by name.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/splitmix.h"
#include "tests/fuzz/fuzz.h"


namespace {

using Bytes = std::vector<uint8_t>;

struct Rng {
  uint64_t n;
  uint64_t next() { return flashnas::splitmix64(n++); }
  size_t below(size_t k) { return k ? static_cast<size_t>(next() % k) : 0; }
};

// One to four edits of the kinds libFuzzer's mutator makes most often.
Bytes mutate(const Bytes& seed, Rng& rng) {
  Bytes b = seed;
  const int edits = 1 + static_cast<int>(rng.below(4));
  for (int e = 0; e < edits; ++e) {
    const size_t at = rng.below(b.size() + 1);
    switch (rng.below(6)) {
      case 0:  // flip a bit
        if (!b.empty()) b[std::min(at, b.size() - 1)] ^= static_cast<uint8_t>(1u << rng.below(8));
        break;
      case 1:  // an interesting byte
        if (!b.empty()) {
          static const uint8_t special[] = {0, 1, 0x7f, 0x80, 0xff, '"', '{', '}', '[', ']', ',', ':', '\n', '=', '-', '9'};
          b[std::min(at, b.size() - 1)] = special[rng.below(sizeof special)];
        }
        break;
      case 2:  // insert random bytes
        for (size_t i = 0, n = 1 + rng.below(8); i < n; ++i)
          b.insert(b.begin() + static_cast<std::ptrdiff_t>(std::min(at, b.size())), static_cast<uint8_t>(rng.next()));
        break;
      case 3:  // delete a run
        if (at < b.size()) b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
                                   b.begin() + static_cast<std::ptrdiff_t>(std::min(b.size(), at + 1 + rng.below(16))));
        break;
      case 4: {  // duplicate a run elsewhere
        if (b.empty()) break;
        const size_t from = rng.below(b.size());
        const size_t n = 1 + rng.below(std::min<size_t>(32, b.size() - from));
        Bytes run(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(from + n));
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(std::min(at, b.size())), run.begin(), run.end());
        break;
      }
      default:  // truncate
        b.resize(at);
        break;
    }
  }
  return b;
}

// The input being run, written to fuzz-finding-<target> in the working
// folder when a target aborts, so that it can become a regression case.
const Bytes* g_current = nullptr;
char g_finding_path[256] = "fuzz-finding";

extern "C" void save_finding(int sig) {
  if (g_current) {
    const int fd = open(g_finding_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      size_t done = 0;
      while (done < g_current->size()) {
        const ssize_t n = write(fd, g_current->data() + done, g_current->size() - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      close(fd);
      static const char msg[] = "fuzz_smoke: the input is saved in the working folder as fuzz-finding-<target>\n";
      (void)!write(2, msg, sizeof msg - 1);
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

int usage() {
  std::fprintf(stderr, "usage: fuzz_smoke --list | fuzz_smoke TARGET [--mutations N] [--accept DIR]... DIR...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  auto& all = flashnas::fuzz::targets();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, fn] : all) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc < 3) return usage();
  const auto it = all.find(argv[1]);
  if (it == all.end()) {
    std::fprintf(stderr, "fuzz_smoke: unknown target \"%s\" (--list shows them)\n", argv[1]);
    return 2;
  }
  long mutations = 200;
  std::vector<std::pair<std::filesystem::path, bool>> dirs;  // folder, its files must be accepted
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mutations" && i + 1 < argc) {
      mutations = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--accept" && i + 1 < argc) {
      dirs.emplace_back(argv[++i], true);
    } else {
      dirs.emplace_back(a, false);
    }
  }
  std::vector<std::pair<std::filesystem::path, bool>> files;
  for (const auto& [d, accept] : dirs) {
    if (!std::filesystem::is_directory(d)) {
      if (accept) {
        std::fprintf(stderr, "fuzz_smoke %s: --accept %s: no such folder\n", argv[1], d.c_str());
        return 2;
      }
      continue;  // regression folders exist only once a crash was found
    }
    for (const auto& e : std::filesystem::directory_iterator(d))
      if (e.is_regular_file()) files.emplace_back(e.path(), accept);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "fuzz_smoke %s: no input files in the folders given\n", argv[1]);
    return 2;
  }
  std::snprintf(g_finding_path, sizeof g_finding_path, "fuzz-finding-%s", argv[1]);
  for (const int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) signal(sig, save_finding);
  Rng rng{0x5eed};
  long runs = 0;
  for (const auto& [f, accept] : files) {
    std::ifstream in(f, std::ios::binary);
    const Bytes seed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    g_current = &seed;
    const long refused_before = flashnas::fuzz::refusals();
    it->second(seed.data(), seed.size());
    if (accept && flashnas::fuzz::refusals() != refused_before) {
      std::fprintf(stderr, "fuzz_smoke %s: the seed %s is refused: %s\n", argv[1], f.c_str(),
                   flashnas::fuzz::last_refusal().c_str());
      return 1;
    }
    ++runs;
    for (long m = 0; m < mutations; ++m, ++runs) {
      const Bytes b = mutate(seed, rng);
      g_current = &b;
      it->second(b.data(), b.size());
    }
    g_current = nullptr;
  }
  std::printf("fuzz_smoke %s: %ld inputs from %zu files, no finding\n", argv[1], runs, files.size());
  return 0;
}
