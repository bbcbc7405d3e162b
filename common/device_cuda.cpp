// CUDA-only part of the device description (built with FLASHNAS_CUDA).
#include <cuda_runtime_api.h>

#include <string>

#include "common/device.h"
#include "common/error.h"

namespace flashnas {

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

namespace {
std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

void describe_cuda_device(int index, DeviceInfo& info) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    throw Error("cuda:" + std::to_string(index) + ": cannot read device properties");
  }
  info.name = prop.name;
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  info.driver = version_text(driver);
  info.cuda_runtime = version_text(runtime);
  info.threads = 0;
}

}  // namespace flashnas
