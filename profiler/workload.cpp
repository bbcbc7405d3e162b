#include "profiler/workload.h"

#include <sstream>

#include "common/error.h"
#include "supernet/arch_spec.h"

namespace flashnas {

Workload Workload::parse(const std::string& text, const std::string& flag) {
  Workload w;
  bool has_prompt = false, has_generate = false;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (eq == std::string::npos) throw InputError(flag + " \"" + text + "\": expected key=value, got \"" + item + "\"");
    int64_t v = 0;
    try {
      size_t used = 0;
      v = std::stoll(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw InputError(flag + " \"" + text + "\": " + key + " must be an integer");
    }
    if (key == "batch") w.batch = v;
    else if (key == "prompt") { w.prompt = v; has_prompt = true; }
    else if (key == "generate") { w.generate = v; has_generate = true; }
    else throw InputError(flag + " \"" + text + "\": unknown key \"" + key + "\"; allowed: batch, prompt, generate");
  }
  if (!has_prompt && !has_generate) {
    throw InputError(flag + " \"" + text + "\": give prompt=N and/or generate=N, e.g. batch=1,prompt=512,generate=128");
  }
  if (w.batch <= 0) throw InputError(flag + " \"" + text + "\": batch must be positive");
  if (w.prompt < 0 || w.generate < 0) throw InputError(flag + " \"" + text + "\": prompt and generate must be >= 0");
  if (w.batch > kMaxBatch || w.prompt > kMaxContext || w.generate > kMaxContext) {
    throw InputError(flag + " \"" + text + "\": batch must be <= " + std::to_string(kMaxBatch) +
                     " and prompt and generate <= " + std::to_string(kMaxContext) + " tokens");
  }
  if (w.prompt + w.generate == 0) throw InputError(flag + " \"" + text + "\": prompt + generate must be positive");
  return w;
}

std::string Workload::str() const {
  return "batch=" + std::to_string(batch) + ",prompt=" + std::to_string(prompt) + ",generate=" + std::to_string(generate);
}

}  // namespace flashnas
