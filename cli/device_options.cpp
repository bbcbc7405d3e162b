#include "cli/device_options.h"

#include <ATen/Parallel.h>

#include "common/error.h"
#include "common/threads.h"

namespace flashnas::cli {

void DeviceOptions::add_to(CLI::App& cmd) {
  cmd.add_option("--device", device, "cpu or cuda:N")->capture_default_str();
  cmd.add_option("--dtype", dtype, "Activation dtype: float32 or bfloat16")->capture_default_str();
  cmd.add_option("--runtime", runtime_, "eager, or cudagraph (CUDA only: decode steps replayed from a CUDA graph)")
      ->capture_default_str();
  cmd.add_option("--threads", threads, "CPU threads (0: LibTorch's default); part of the device fingerprint")
      ->capture_default_str();
}

MeasureOptions DeviceOptions::apply(DeviceInfo* info) const {
  use_threads(threads, "--threads");
  const torch::Device dev = parse_device(device, "--device");
  if (runtime_ != "eager" && runtime_ != "cudagraph") {
    throw InputError("--runtime: must be eager or cudagraph, got \"" + runtime_ + "\"");
  }
  if (runtime_ == "cudagraph" && !dev.is_cuda()) throw InputError("--runtime cudagraph: needs --device cuda:N");
  MeasureOptions m = measure_options(dev, parse_dtype(dtype, "--dtype"), runtime_);
  *info = describe_device(m.device);
  return m;
}

}  // namespace flashnas::cli
