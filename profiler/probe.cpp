#include "profiler/probe.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "common/error.h"
#include "common/stats.h"

#ifdef FLASHNAS_WITH_CUDA
#include <torch/cuda.h>
#endif

namespace flashnas {
namespace {

constexpr int64_t kMatmulN = 256;
constexpr int kComputeSamples = 5, kMemorySamples = 3;

// "48K", "1024K", "32M" -> bytes; 0 when unreadable.
int64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    return 0;
  }
  const char unit = used < s.size() ? s[used] : ' ';
  if (unit == 'K') return v << 10;
  if (unit == 'M') return v << 20;
  if (unit == 'G') return v << 30;
  return v;
}

std::string read_line(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  return s;
}

}  // namespace

double ProbeReading::index() const { return std::sqrt(compute_us * memory_us); }

json ProbeReading::to_json() const {
  return json{{"compute_us", compute_us}, {"memory_us", memory_us}, {"index_us", index()}};
}

ProbeReading mean_reading(const ProbeReading& a, const ProbeReading& b) {
  return ProbeReading{0.5 * (a.compute_us + b.compute_us), 0.5 * (a.memory_us + b.memory_us)};
}

CpuCaches read_cpu_caches() {
  CpuCaches c;
  const std::filesystem::path root = "/sys/devices/system/cpu/cpu0/cache";
  std::error_code ec;
  if (std::filesystem::is_directory(root, ec)) {
    for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
      if (e.path().filename().string().rfind("index", 0) != 0) continue;
      const std::string level = read_line(e.path() / "level"), type = read_line(e.path() / "type");
      const int64_t size = parse_size(read_line(e.path() / "size"));
      if (level == "1" && type == "Data") c.l1d = size;
      if (level == "2" && type != "Instruction") c.l2 = size;
      if (level == "3" && type != "Instruction") c.l3 = size;
    }
    c.source = root.string();
  }
#ifdef _SC_LEVEL2_CACHE_SIZE
  if (c.l2 <= 0 && c.l3 <= 0) {
    c.l1d = std::max<int64_t>(0, sysconf(_SC_LEVEL1_DCACHE_SIZE));
    c.l2 = std::max<int64_t>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));
    c.l3 = std::max<int64_t>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
    c.source = "sysconf";
  }
#endif
  if (c.l2 <= 0 && c.l3 <= 0) c.source = "unknown";
  return c;
}

int64_t probe_memory_bytes(const CpuCaches& caches) {
  const int64_t llc = std::max(caches.l2, caches.l3);
  if (llc <= 0) return int64_t(64) << 20;
  return std::clamp<int64_t>(2 * llc, int64_t(8) << 20, int64_t(256) << 20);
}

MachineProbe::MachineProbe(const torch::Device& device, int64_t memory_bytes)
    : device_(device), memory_bytes_(memory_bytes) {
  if (memory_bytes <= 0) throw Error("probe: memory buffer size must be positive");
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  torch::manual_seed(0x9e0be);
  a_ = torch::randn({kMatmulN, kMatmulN}, opts);
  b_ = torch::randn({kMatmulN, kMatmulN}, opts);
  buf_ = torch::ones({memory_bytes / 4}, opts);
}

ProbeReading MachineProbe::read() {
  c10::InferenceMode inference;
  using clock = std::chrono::steady_clock;
  auto sync = [this] {
#ifdef FLASHNAS_WITH_CUDA
    if (device_.is_cuda()) torch::cuda::synchronize();
#endif
  };
  auto time = [&](const std::function<void()>& fn, int n) {
    fn();  // one untimed call brings the operands into the state the timed ones see
    sync();
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
      const auto t0 = clock::now();
      fn();
      sync();
      us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }
    return median(us);
  };
  ProbeReading r;
  r.compute_us = time([this] { (void)torch::mm(a_, b_); }, kComputeSamples);
  r.memory_us = time([this] { (void)buf_.sum(); }, kMemorySamples);
  return r;
}

}  // namespace flashnas
