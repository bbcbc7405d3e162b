// Build provenance: version, commit (at build time), build type.
#pragma once
#include <string>

namespace flashnas {
std::string version_string();    // "0.1.0"
std::string git_commit();        // short commit at build time ("-dirty" if modified), "unknown" outside a checkout
std::string build_type();        // CMake build type
std::string torch_version();     // LibTorch version, e.g. "2.11.0"
bool cuda_paths_built();         // built with -DFLASHNAS_CUDA=ON (flashnas_cuda.h)
}  // namespace flashnas
