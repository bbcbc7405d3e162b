#include "common/device.h"

#include <ATen/Parallel.h>

#include <fstream>
#include <regex>

#include "common/error.h"
#include "common/version.h"

namespace flashnas {

#ifdef FLASHNAS_WITH_CUDA
// Defined in device_cuda.cpp (built only with FLASHNAS_CUDA).
int cuda_device_count();
void describe_cuda_device(int index, DeviceInfo& info);
#endif

bool cuda_available() {
#ifdef FLASHNAS_WITH_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

torch::Device parse_device(const std::string& text, const std::string& flag) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  static const std::regex cuda_re("cuda(:([0-9]+))?");
  std::smatch m;
  if (!std::regex_match(text, m, cuda_re)) {
    throw InputError(flag + ": unknown device \"" + text + "\"; allowed: cpu, cuda, cuda:N");
  }
  const int index = m[2].matched ? std::stoi(m[2].str()) : 0;
#ifdef FLASHNAS_WITH_CUDA
  const int n = cuda_device_count();
  if (n == 0) throw Error(flag + " " + text + ": no CUDA device is visible on this machine");
  if (index >= n) {
    throw InputError(flag + " " + text + ": device index out of range; this machine has " + std::to_string(n) +
                     " CUDA device(s)");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
#else
  (void)index;
  throw Error(flag + " " + text + ": this flashnas was built without CUDA; reconfigure with -DFLASHNAS_CUDA=ON");
#endif
}

torch::ScalarType parse_dtype(const std::string& text, const std::string& flag) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "float64" || text == "fp64") return torch::kFloat64;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  throw InputError(flag + ": unknown dtype \"" + text + "\"; allowed: float32, float64, bfloat16");
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: return std::string(c10::toString(t));
  }
}

int64_t dtype_bytes(torch::ScalarType t) { return static_cast<int64_t>(c10::elementSize(t)); }

namespace {
std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto pos = line.find(':');
      if (pos != std::string::npos) return line.substr(pos + 2);
    }
  }
  return "unknown CPU";
}
}  // namespace

std::string DeviceInfo::fingerprint() const {
  std::string fp = device + "|" + name + "|threads=" + std::to_string(threads) + "|torch=" + torch_version +
                   "|build=" + build_type;
  if (!driver.empty()) fp += "|driver=" + driver + "|cuda=" + cuda_runtime;
  return fp;
}

DeviceInfo describe_device(const torch::Device& device) {
  DeviceInfo info;
  info.torch_version = torch_version();
  info.build_type = build_type();
  info.commit = git_commit();
  if (device.is_cpu()) {
    info.device = "cpu";
    info.name = cpu_model_name();
    info.threads = at::get_num_threads();
    return info;
  }
#ifdef FLASHNAS_WITH_CUDA
  if (device.is_cuda()) {
    info.device = "cuda:" + std::to_string(device.index() < 0 ? 0 : device.index());
    describe_cuda_device(device.index() < 0 ? 0 : device.index(), info);
    return info;
  }
#endif
  throw Error("describe_device: unsupported device " + device.str());
}

}  // namespace flashnas
