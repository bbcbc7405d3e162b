// Workloads: what latency means to the user. {batch, prompt, generate}: a
// prefill of `prompt` tokens, then `generate` decode steps, for `batch`
// sequences. Written "batch=1,prompt=512,generate=128" on the command line.
#pragma once
#include <cstdint>
#include <string>

namespace flashnas {

struct Workload {
  int64_t batch = 1;
  int64_t prompt = 0;
  int64_t generate = 0;

  // InputError naming `flag` for unknown keys or bad values.
  static Workload parse(const std::string& text, const std::string& flag = "--workload");
  std::string str() const;
};

}  // namespace flashnas
