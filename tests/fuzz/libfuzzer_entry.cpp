// libFuzzer's entry point for a binary holding one target (FLASHNAS_FUZZ=ON).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const flashnas::fuzz::TargetFn fn = [] {
    const auto& t = flashnas::fuzz::targets();
    if (t.size() != 1) {
      std::fprintf(stderr, "flashnas fuzz: a libFuzzer binary must hold exactly one target, this one holds %zu\n", t.size());
      std::abort();
    }
    return t.begin()->second;
  }();
  return fn(data, size);
}
