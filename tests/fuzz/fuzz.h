// Fuzz targets for every reader of user input, and what they share.
//
// Each target is one function of (bytes, size) declared with
// FLASHNAS_FUZZ_TARGET(name). Built with clang's libFuzzer
// (FLASHNAS_FUZZ=ON, scripts/fuzz.sh), each target is its own binary
// fuzz_<name> whose LLVMFuzzerTestOneInput (libfuzzer_entry.cpp) calls it;
// in the normal build every target registers in one binary, fuzz_smoke
// (smoke_main.cpp), that replays the committed corpora and regression cases
// plus deterministic mutations of them: the short fuzz run of the test
// command.
//
// The contract every target checks: a reader given any bytes either returns
// something it can use or throws flashnas::InputError (a message naming the
// file). Any other exception, a crash, a leak or undefined behaviour is a
// finding: guard() aborts with the exception's message so that both libFuzzer
// and the smoke driver report it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace flashnas::fuzz {

using TargetFn = int (*)(const uint8_t* data, size_t size);

// The targets linked into this binary, by name.
bool register_target(const char* name, TargetFn fn);
const std::map<std::string, TargetFn>& targets();

// A folder of this process's own, removed at exit (under $TMPDIR or /tmp).
const std::filesystem::path& scratch_dir();

// Writes the input to scratch_dir()/name (replacing it) and returns the path.
std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size);

// Runs fn; an InputError is the reader refusing bad input (fine); anything
// else thrown aborts with the target's name and the message.
void guard(const char* target, const std::function<void()>& fn);

// Refusals (InputErrors caught by guard) so far in this process, and the
// last one's message: the smoke driver checks that every seed of the corpus
// is accepted, so that fuzzing starts from inputs that reach past the first
// check.
long refusals();
const std::string& last_refusal();

}  // namespace flashnas::fuzz

// Declares target `name`: a function of the input that registers itself, so
// that fuzz_smoke holds every target and each libFuzzer binary its one.
#define FLASHNAS_FUZZ_TARGET(name)                                                                     \
  static int fuzz_target_##name(const uint8_t* data, size_t size);                                   \
  [[maybe_unused]] static const bool fuzz_registered_##name =                                        \
      flashnas::fuzz::register_target(#name, fuzz_target_##name);                                   \
  static int fuzz_target_##name(const uint8_t* data, size_t size)
