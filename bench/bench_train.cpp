// Trainer throughput on this CPU, in one run: the machine's float32 matmul
// GFLOP/s (torch::mm, 1024^3 and 2048^3), then the trainer's tokens/s and
// achieved GFLOP/s on a fixed model with weight normalization on and off;
// utilisation = achieved / matmul. Training FLOPs per token are taken as 3x
// the forward FLOPs from the static accounting (forward + backward ~ 2x).
//
//   bench_train [--arch FILE] [--data TOKENS] [--steps N] [--batch-size B] [--seq-len T] [--threads N] [--json FILE]
// Without --data, a synthetic byte corpus is generated in a temporary folder.
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstring>
#include <random>

#include "common/device.h"
#include "common/files.h"
#include "common/format.h"
#include "profiler/timing.h"
#include "supernet/accounting.h"
#include "train/trainer.h"
#include "train/training_data.h"

using namespace flashnas;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  std::string arch_file = std::string(FLASHNAS_SOURCE_DIR) + "/configs/arch/demo-hybrid.json", data_file, json_out;
  int64_t steps = 40, batch = 16, seq = 256;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    const std::string a = argv[i];
    if (a == "--arch") arch_file = next();
    else if (a == "--data") data_file = next();
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--batch-size") batch = std::stoll(next());
    else if (a == "--seq-len") seq = std::stoll(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--json") json_out = next();
    else {
      std::fprintf(stderr, "usage: bench_train [--arch FILE] [--data TOKENS] [--steps N] [--batch-size B] "
                           "[--seq-len T] [--threads N] [--json FILE]\n");
      return 2;
    }
  }
  if (threads > 0) at::set_num_threads(threads);
  const DeviceInfo dev = describe_device(torch::Device(torch::kCPU));
  std::printf("device: %s, %d threads; LibTorch %s; commit %s\n\n", dev.name.c_str(), dev.threads,
              dev.torch_version.c_str(), dev.commit.c_str());
  json rows = json::array();

  // 1) The machine's matmul rate.
  double peak = 0;
  for (int64_t n : {1024, 2048}) {
    auto a = torch::randn({n, n}), b = torch::randn({n, n});
    TimingOptions o;
    o.min_count = 5;
    o.min_seconds = 0.5;
    const TimingStats s = measure([&] { torch::mm(a, b); }, o);
    const double gflops = 2.0 * n * n * n / (s.median_us * 1e-6) / 1e9;
    peak = std::max(peak, gflops);
    std::printf("matmul %lldx%lldx%lld float32: %.2f ms, %.1f GFLOP/s\n", (long long)n, (long long)n, (long long)n,
                s.median_us / 1e3, gflops);
    rows.push_back({{"bench", "matmul"}, {"n", n}, {"median_us", s.median_us}, {"gflops", gflops},
                    {"samples_us", s.samples_us}});
  }

  // 2) The trainer.
  char tmpl[] = "/tmp/flashnas-bench-train-XXXXXX";
  const fs::path tmp = ::mkdtemp(tmpl);
  if (data_file.empty()) {
    std::mt19937_64 rng(0);
    std::vector<Document> docs;
    const std::string alphabet = "abcdefghijklmnopqrstuvwxyz     .,\n";
    for (int d = 0; d < 64; ++d) {
      std::string text(64 * 1024, ' ');
      for (auto& c : text) c = alphabet[rng() % alphabet.size()];
      docs.push_back({"synthetic" + std::to_string(d), text});
    }
    data_file = (tmp / "synthetic.tokens").string();
    write_token_file(data_file, docs, *make_byte_tokenizer());
  }
  const ArchSpec arch = ArchSpec::load(arch_file);
  const TrainingData data = open_training_data(data_file, 0.05, 0, "--data");
  const double flops_per_token = 3.0 * account(arch, seq, 4).flops_per_token_prefill;
  std::printf("\nmodel %s: %s params; training FLOPs/token ~ %.1f MFLOP (3x forward at T=%lld)\n",
              arch.name.c_str(), with_commas(account(arch, seq, 4).params_total).c_str(), flops_per_token / 1e6,
              (long long)seq);
  std::printf("%-22s %12s %12s %12s %12s\n", "trainer", "tokens/s", "GFLOP/s", "utilisation", "val loss");
  for (bool wn : {true, false}) {
    TrainRecipe r;
    r.batch_size = batch;
    r.seq_len = seq;
    r.tokens = steps * batch * seq;
    r.weight_norm = wn;
    r.eval_interval = 0;
    r.eval_batches = 2;
    r.threads = threads;
    Trainer t(arch, data.dataset, data.tokenizer, r, tmp / (wn ? "wn" : "nown"));
    const TrainResult res = t.run(false);
    const double gflops = res.tokens_per_s * flops_per_token / 1e9;
    std::printf("%-22s %12.0f %12.2f %11.1f%% %12.4f\n", wn ? "weight norm on" : "weight norm off",
                res.tokens_per_s, gflops, 100.0 * gflops / peak, res.val_loss);
    rows.push_back({{"bench", "train"}, {"weight_norm", wn}, {"tokens_per_s", res.tokens_per_s}, {"gflops", gflops},
                    {"utilisation", gflops / peak}, {"steps", steps}, {"batch", batch}, {"seq_len", seq},
                    {"arch_hash", arch.hash()}, {"val_loss", res.val_loss}});
  }
  fs::remove_all(tmp);
  if (!json_out.empty()) {
    write_file_atomic(json_out, json{{"commit", dev.commit}, {"device", dev.fingerprint()}, {"rows", rows}}.dump(1));
    std::printf("\nrows written to %s\n", json_out.c_str());
  }
  return 0;
}
