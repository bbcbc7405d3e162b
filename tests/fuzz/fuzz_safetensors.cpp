// safetensors files (train/safetensors.h): header length, JSON header,
// dtypes, shapes and data offsets of any bytes.
#include <map>
#include <string>

#include "tests/fuzz/fuzz.h"
#include "train/safetensors.h"

FLASHNAS_FUZZ_TARGET(safetensors) {
  const auto path = flashnas::fuzz::write_input("model.safetensors", data, size);
  flashnas::fuzz::guard("safetensors", [&] {
    std::map<std::string, std::string> meta;
    for (const auto& [name, t] : flashnas::load_safetensors(path, &meta)) (void)t.sum().item<double>();
  });
  return 0;
}
