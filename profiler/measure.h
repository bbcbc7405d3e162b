// Measuring LUT entries and whole-model workloads with the timing rules of
// timing.h: warm-up, a minimum count and time, the median kept; an entry
// whose coefficient of variation exceeds max_cv is measured again (up to
// `attempts` times) and the calmest measurement is kept.
#pragma once
#include <functional>
#include <vector>

#include "profiler/lut.h"
#include "profiler/probe.h"
#include "profiler/workload.h"
#include "supernet/arch_spec.h"

namespace flashnas {

struct MeasureOptions {
  TimingOptions timing;
  double max_cv = 0.10;
  int attempts = 3;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  // Whole-model runs (bench_workload): "eager", or "cudagraph" (CUDA only:
  // each decode step replayed from a CUDA graph captured before timing).
  // LUT entries take theirs from LutKey::runtime.
  std::string runtime = "eager";
};

// Options for measuring on `device` in `runtime` (eager, or cudagraph on a
// CUDA device; InputError otherwise): on a GPU, timing.sync waits for the
// device, so host-clock timings (bench_workload) include its work.
MeasureOptions measure_options(torch::Device device, torch::ScalarType dtype, const std::string& runtime);

// Times one entry (a sublayer or the model's ends) in its phase. On CPU a
// sublayer is timed as rotating copies whose weights together reach
// rotation_bytes(), as inside a whole model, where the other layers evict a
// layer's weights from the cores' private caches between its calls.
TimingStats measure_entry(const LutKey& key, const MeasureOptions& opts);
// Bytes of weights the rotating copies reach: twice the private (L2) caches
// of the cores in use, read from the machine; half the L3 where only that is
// known; 8 MiB where the machine says nothing (profile reports which).
int64_t rotation_bytes(const CpuCaches& caches, int threads);

// The entries needed to predict `workloads` for `archs`: for every distinct
// sublayer (and the model's ends) a prefill at each prompt length and decode
// steps on a grid of contexts covering every generated position (the ends of
// the range and the powers of two between); in the cudagraph runtime one
// decode entry at the cache's capacity (prompt + meta + generate), since a
// graphed step reads the whole cache. Deduplicated, in a stable order.
std::vector<LutKey> plan_entries(const std::vector<ArchSpec>& archs, const std::vector<Workload>& workloads,
                                 const std::string& dtype, const std::string& runtime);

struct ProfileReport {
  int64_t planned = 0, measured = 0, skipped = 0;  // measured counts rounds; skipped: entries with all rounds
  int rounds = 1;
  bool time_limited = false;
  double seconds = 0;
};

// Measures every planned entry `rounds` times (each round committed on its
// own; the store keeps the fastest round, see LutStore::put). All entries get
// their first round before any gets its second, so the rounds of one entry
// are minutes apart. Entries and rounds already stored are skipped, so an
// interrupted run resumes; stops early after max_minutes.
ProfileReport run_profile(const std::vector<LutKey>& plan, LutStore& store, int64_t device,
                          const MeasureOptions& opts, double max_minutes,
                          const std::function<void(int64_t done, int64_t todo, const LutKey&, const TimingStats&,
                                                   double eta_s)>& progress,
                          int rounds = 1);

// End to end: a fresh cache, a prefill of the prompt, then `generate` decode
// steps feeding back the argmax token, all with the real model. With runtime
// "cudagraph" the decode runs as a graph-serving runtime runs it (see
// graph_decode.h): one cache of capacity prompt + generate and one decode
// step captured once as a CUDA graph before timing, its position on the
// device; the timed prefill is eager and fills that cache, and the decode is
// `generate` replays of the one graph.
struct BenchResult {
  TimingStats total, prefill, decode;  // decode: all generate steps of a sample together
  json to_json() const;
};
BenchResult bench_workload(const ArchSpec& spec, const Workload& w, const MeasureOptions& opts);
// The fastest of `rounds` bench_workload runs (by median total): the same
// rule as the LUT's entries.
BenchResult bench_rounds(const ArchSpec& spec, const Workload& w, const MeasureOptions& opts, int rounds);
}  // namespace flashnas
