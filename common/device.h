// Device names ("cpu", "cuda:N") and the device fingerprint that stamps every
// measurement (LUT entries, benchmark rows, checkpoints).
#pragma once
#include <torch/types.h>

#include <string>

namespace flashnas {

// Parses "cpu", "cuda" or "cuda:N". Throws InputError naming `flag` and the
// allowed forms; "cuda…" on a build or machine without CUDA is an Error that
// says which of the two is missing.
torch::Device parse_device(const std::string& text, const std::string& flag = "--device");

// Parses "float32" / "float64" / "bfloat16" (also "fp32", "fp64", "bf16").
torch::ScalarType parse_dtype(const std::string& text, const std::string& flag = "--dtype");
std::string dtype_name(torch::ScalarType t);
int64_t dtype_bytes(torch::ScalarType t);

struct DeviceInfo {
  std::string device;        // "cpu" or "cuda:N"
  std::string name;          // CPU model name or GPU name
  int threads = 0;           // CPU: intra-op threads in use; GPU: 0
  std::string driver;        // GPU driver version ("" on CPU)
  std::string cuda_runtime;  // CUDA runtime version ("" on CPU)
  std::string torch_version; // LibTorch version
  std::string build_type;    // CMake build type
  std::string commit;        // flashnas git commit of the build

  // Stable string identifying where a measurement came from; two entries
  // with different fingerprints are never mixed.
  std::string fingerprint() const;
};

DeviceInfo describe_device(const torch::Device& device);

// True when this binary was built with FLASHNAS_CUDA and a GPU is visible.
bool cuda_available();

}  // namespace flashnas
