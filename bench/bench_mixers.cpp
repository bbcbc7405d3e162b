// Every mixer on this CPU, side by side in one run:
//  1. the chunked/parallel forward against the naive recurrent loop (step
//     token by token) over the same sequence: the loop/forward ratio;
//  2. each mixer's decode step at contexts 1k, 4k and 16k, against attn's.
// Batch 1, float32, no autograd. Ratios transfer between machines; absolute
// CPU times do not. --json FILE writes every row with raw samples.
//
//   bench_mixers [--d-model D] [--seq T] [--threads N] [--json FILE]
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/device.h"
#include "common/files.h"
#include "common/json_io.h"
#include "profiler/timing.h"
#include "supernet/arch_spec.h"
#include "supernet/registry.h"

using namespace flashnas;

namespace {
struct Mixer {
  std::string label;
  json layer;
};
}  // namespace

int main(int argc, char** argv) {
  int64_t d = 256, T = 1024;
  int threads = 0;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? argv[++i] : (char*)"0"; };
    if (!std::strcmp(argv[i], "--d-model")) d = std::atoll(next());
    else if (!std::strcmp(argv[i], "--seq")) T = std::atoll(next());
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(next());
    else if (!std::strcmp(argv[i], "--json")) json_out = next();
    else {
      std::fprintf(stderr, "usage: bench_mixers [--d-model D] [--seq T] [--threads N] [--json FILE]\n");
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  const DeviceInfo dev = describe_device(torch::Device(torch::kCPU));
  std::printf("device: %s, %d threads; LibTorch %s; commit %s; d_model %lld, sequence %lld, batch 1, float32\n\n", dev.name.c_str(),
              dev.threads, dev.torch_version.c_str(), dev.commit.c_str(), (long long)d, (long long)T);
  // Every registered token mixer, at the hyperparameters its registry entry
  // gives for this width (supernet/ops/op_kind.h, OpTesting::bench); attn first.
  std::vector<Mixer> mixers;
  for (const auto& k : op_kinds()) {
    if (!k.testing.bench) continue;
    json layer = k.testing.bench(d);
    layer["type"] = k.name;
    mixers.push_back({k.name, layer});
  }
  std::stable_partition(mixers.begin(), mixers.end(), [](const Mixer& m) { return m.label == "attn"; });
  if (mixers.empty() || mixers[0].label != "attn") {
    std::fprintf(stderr, "bench_mixers: the registry has no attn to compare with\n");
    return 1;
  }
  TimingOptions opts;
  opts.warmup = 1;
  opts.min_count = 3;
  opts.min_seconds = 0.3;
  json rows = json::array();
  auto row = [&](json r, const TimingStats& s) {
    r["median_us"] = s.median_us;
    r["p10_us"] = s.p10_us;
    r["p90_us"] = s.p90_us;
    r["cv"] = s.cv;
    r["samples_us"] = s.samples_us;
    rows.push_back(std::move(r));
  };

  std::printf("1) forward (parallel/chunked) vs recurrent loop over T=%lld tokens\n", (long long)T);
  std::printf("%-12s %14s %16s %10s %14s\n", "mixer", "forward ms", "step loop ms", "loop/fwd", "fwd tokens/s");
  std::vector<std::shared_ptr<Operator>> ops;
  for (const auto& m : mixers) {
    const LayerSpec l = ArchSpec::parse_layer(m.layer, d, "bench", m.label);
    auto op = make_operator(l.type, l.hp, d);
    ops.push_back(op);
    auto x = torch::randn({1, T, d});
    const TimingStats fwd = measure([&] { op->forward(x, nullptr); }, opts);
    const TimingStats loop = measure(
        [&] {
          OpState st = op->init_state(1, T, torch::kFloat32);
          for (int64_t t = 0; t < T; ++t) op->step(x.select(1, t), st);
        },
        opts);
    std::printf("%-12s %14.2f %16.2f %9.1fx %14.0f\n", m.label.c_str(), fwd.median_us / 1e3, loop.median_us / 1e3,
                loop.median_us / fwd.median_us, T / (fwd.median_us * 1e-6));
    row({{"bench", "forward"}, {"mixer", m.label}, {"hp", l.hp}, {"T", T}, {"d_model", d}}, fwd);
    row({{"bench", "step_loop"}, {"mixer", m.label}, {"hp", l.hp}, {"T", T}, {"d_model", d}}, loop);
  }

  std::printf("\n2) one decode step at context t (ms/token; ratio to attn at the same t)\n");
  std::printf("%-12s", "mixer");
  const std::vector<int64_t> contexts = {1024, 4096, 16384};
  for (int64_t t : contexts) std::printf(" %11s %7s", ("t=" + std::to_string(t)).c_str(), "vs attn");
  std::printf("\n");
  std::vector<double> attn_us(contexts.size(), 0);
  opts.min_count = 20;
  opts.min_seconds = 0.2;
  for (size_t i = 0; i < mixers.size(); ++i) {
    std::printf("%-12s", mixers[i].label.c_str());
    for (size_t c = 0; c < contexts.size(); ++c) {
      const int64_t t = contexts[c];
      OpState st = ops[i]->init_state(1, t + 1, torch::kFloat32);
      auto x = torch::randn({1, d});
      // A state as if t tokens had been consumed: attention caches are full up
      // to t (their contents do not change the cost); recurrent states are flat.
      const TimingStats s = measure(
          [&] {
            st.pos = t;
            ops[i]->step(x, st);
          },
          opts);
      if (i == 0) attn_us[c] = s.median_us;
      std::printf(" %11.3f %6.2fx", s.median_us / 1e3, s.median_us / attn_us[c]);
      row({{"bench", "step"}, {"mixer", mixers[i].label}, {"context", t}, {"d_model", d}}, s);
    }
    std::printf("\n");
  }
  if (!json_out.empty()) {
    write_file_atomic(json_out, json{{"commit", dev.commit}, {"device", dev.fingerprint()}, {"rows", rows}}.dump(1));
    std::printf("\nrows written to %s\n", json_out.c_str());
  }
  return 0;
}
