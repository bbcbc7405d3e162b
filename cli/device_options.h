// Device, dtype and thread flags shared by profile, latency and bench: the
// thread count is fixed before the device is described, so it is part of the
// fingerprint that keys the latency table.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

#include "common/device.h"
#include "profiler/measure.h"

namespace flashnas::cli {

struct DeviceOptions {
  std::string device = "cpu";
  std::string dtype = "float32";
  int threads = 0;  // 0: LibTorch's default

  void add_to(CLI::App& cmd);
  // Applies the thread count and returns the measurement options and the device description.
  MeasureOptions apply(DeviceInfo* info) const;
  std::string runtime() const { return runtime_; }
  std::string runtime_ = "eager";
};

}  // namespace flashnas::cli
