// CUDA timing (built only with FLASHNAS_CUDA; the GPU issue runs it): CUDA
// events around each call on the current stream, and CUDA-graph replay.
// Same sampling rules as timing.h (warm-up, minimum count and time, caps).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "profiler/timing.h"

namespace flashnas {

// Times `fn` with a pair of CUDA events per sample on the current stream.
TimingStats measure_cuda_events(const std::function<void()>& fn, const TimingOptions& opts);

// Warms `fn` up on a side stream, captures one call into a CUDA graph, and
// times the graph's replays with events. `fn` must not synchronise with the
// host; host-side values it reads (e.g. a state's position) are baked into
// the graph, so each replay repeats the captured call exactly.
TimingStats measure_cuda_graph(const std::function<void()>& fn, const TimingOptions& opts);

// A decode as CUDA graphs, one per step. For g = 0..n-1, step(g, false) is
// run once eagerly (allocations, library handles, lazy initialisation) and
// step(g, true) is captured into graph g, both on a side stream; the caller
// makes the capture of g see the state of position g (host-side values such
// as positions are baked into the graph) and must not synchronise with the
// host inside step. Each graph has its own memory pool, so a state buffer
// one graph writes stays valid for the next. replay() launches graphs
// 0..n-1 in order on the current stream and returns without waiting.
class DecodeGraphs {
 public:
  DecodeGraphs(int64_t n, const std::function<void(int64_t g, bool capture)>& step);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;
  void replay() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashnas
