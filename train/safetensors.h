// The safetensors format: an 8-byte little-endian header length, a JSON
// header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}} padded with spaces to 8 bytes, then the
// raw little-endian tensor bytes. Tensors are written in name order.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace flashnas {

// Writes the named tensors (any device; copied to CPU, made contiguous)
// atomically. Supported dtypes: float32, float64, bfloat16, float16, int64, int32.
void save_safetensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads every tensor (CPU). InputError naming the file on a malformed file.
std::map<std::string, torch::Tensor> load_safetensors(const std::filesystem::path& path,
                                                      std::map<std::string, std::string>* metadata = nullptr);

}  // namespace flashnas
