#include "common/version.h"

#include <torch/version.h>

#include "flashnas_commit.h"  // generated at build time

namespace flashnas {
std::string version_string() { return FLASHNAS_VERSION; }
std::string git_commit() { return FLASHNAS_GIT_COMMIT; }
std::string build_type() { return FLASHNAS_BUILD_TYPE; }
std::string torch_version() { return TORCH_VERSION; }
}  // namespace flashnas
