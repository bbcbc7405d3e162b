// Attention on this CPU: the fused path (LibTorch SDPA) against the plain
// blockwise reference over the same inputs, side by side in one run, and the
// `attn` operator's decode step at growing contexts. Prints a table (ratios
// are what transfer between machines; absolute CPU times do not) and, with
// --json FILE, every row with its raw samples, commit and device.
//
//   bench_attention [--threads N] [--json FILE]
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>
#include <iostream>

#include "common/device.h"
#include "common/files.h"
#include "common/json_io.h"
#include "common/version.h"
#include "profiler/timing.h"
#include "supernet/ops/attention_core.h"
#include "supernet/ops/attn.h"

using namespace flashnas;

int main(int argc, char** argv) {
  std::string json_out;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_out = argv[++i];
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_attention [--threads N] [--json FILE]\n");
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  const DeviceInfo dev = describe_device(torch::Device(torch::kCPU));
  std::printf("device: %s, %d threads; LibTorch %s; commit %s\n\n", dev.name.c_str(), dev.threads,
              dev.torch_version.c_str(), dev.commit.c_str());
  json rows = json::array();
  TimingOptions opts;
  opts.min_count = 5;
  opts.min_seconds = 0.3;

  // 1) Prefill core: B=1, Hq=8, Hkv=2, dh=64, causal, float32.
  std::printf("%-34s %12s %12s %8s\n", "attention core, B=1 H=8/2 dh=64", "fused ms", "reference ms", "ratio");
  for (int64_t T : {256, 1024, 2048}) {
    auto q = torch::randn({1, 8, T, 64}), k = torch::randn({1, 2, T, 64}), v = torch::randn({1, 2, T, 64});
    const TimingStats fused = measure([&] { attention(q, k, v, 0, 0, 0); }, opts);
    const TimingStats ref = measure([&] { attention_reference(q, k, v, 0, 0, 0); }, opts);
    std::printf("%-34s %12.3f %12.3f %7.2fx\n", ("prefill T=" + std::to_string(T)).c_str(), fused.median_us / 1e3,
                ref.median_us / 1e3, ref.median_us / fused.median_us);
    for (auto [name, st] : {std::pair{"fused", &fused}, std::pair{"reference", &ref}}) {
      rows.push_back({{"bench", "attention_core_prefill"}, {"impl", name}, {"T", T}, {"median_us", st->median_us},
                      {"p10_us", st->p10_us}, {"p90_us", st->p90_us}, {"cv", st->cv}, {"samples_us", st->samples_us}});
    }
  }

  // 2) attn operator decode step at context t (d=512, 8/2 heads), float32.
  std::printf("\n%-34s %12s %12s\n", "attn step, d=512 H=8/2", "ms/token", "vs t=1k");
  AttnConfig cfg;
  cfg.n_heads = 8;
  cfg.n_kv_heads = 2;
  cfg.head_dim = 64;
  AttnOp op(cfg, 512);
  double base = 0;
  for (int64_t t : {1024, 4096, 16384}) {
    OpState st = op.init_state(1, t + 1, torch::kFloat32);
    st.pos = t;  // a filled cache of t tokens (contents do not change the cost)
    auto x = torch::randn({1, 512});
    const TimingStats s = measure(
        [&] {
          st.pos = t;
          op.step(x, st);
        },
        opts);
    if (base == 0) base = s.median_us;
    std::printf("%-34s %12.3f %11.2fx\n", ("context " + std::to_string(t)).c_str(), s.median_us / 1e3,
                s.median_us / base);
    rows.push_back({{"bench", "attn_step"}, {"context", t}, {"median_us", s.median_us}, {"p10_us", s.p10_us},
                    {"p90_us", s.p90_us}, {"cv", s.cv}, {"samples_us", s.samples_us}});
  }
  if (!json_out.empty()) {
    json doc = {{"commit", dev.commit}, {"device", dev.fingerprint()}, {"rows", rows}};
    write_file_atomic(json_out, doc.dump(1) + "\n");
    std::printf("\nrows written to %s\n", json_out.c_str());
  }
  return 0;
}
