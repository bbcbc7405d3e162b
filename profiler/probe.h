// The machine-speed probe: a short fixed workload timed between
// measurements, so that every measurement knows how fast the machine was at
// that moment. Shared and cloud machines change speed over minutes (other
// tenants, CPU steal, frequency); a measurement divided by the probe's
// reading at the same moment is comparable with one taken at another time.
//
// Two kernels, each timed a few times and the median kept:
//   compute: a square float32 matmul (n x n times n x n, n = 256): FLOP-bound
//   memory:  a sum over a buffer sized from the machine's last-level cache
//            (twice its size, at least 8 MiB): bandwidth-bound
// The reading's `index` is the geometric mean of the two (microseconds).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "common/json_io.h"

namespace flashnas {

struct ProbeReading {
  double compute_us = 0, memory_us = 0;
  double index() const;  // sqrt(compute_us * memory_us)
  json to_json() const;
};

// The mean of two readings (before and after a measurement).
ProbeReading mean_reading(const ProbeReading& a, const ProbeReading& b);

// CPU cache sizes in bytes, read from /sys/devices/system/cpu/cpu0/cache
// (sysconf where sysfs is missing); 0 where the machine does not say.
struct CpuCaches {
  int64_t l1d = 0, l2 = 0, l3 = 0;
  std::string source;  // where the numbers came from
};
CpuCaches read_cpu_caches();

class MachineProbe {
 public:
  MachineProbe(const torch::Device& device, int64_t memory_bytes);
  // Runs both kernels (a few milliseconds on a CPU).
  ProbeReading read();
  int64_t memory_bytes() const { return memory_bytes_; }

 private:
  torch::Device device_;
  int64_t memory_bytes_;
  torch::Tensor a_, b_, buf_;
};

// The probe's memory-kernel size for this machine: twice the last-level
// cache, at least 8 MiB, at most 256 MiB; 64 MiB where no cache size is known.
int64_t probe_memory_bytes(const CpuCaches& caches);

}  // namespace flashnas
