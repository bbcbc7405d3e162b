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

// One call captured as a CUDA graph. `warm` runs once eagerly on a side
// stream (allocations, library handles, lazy initialisation; it may be `fn`
// itself), then `fn` is captured on that stream. `fn` must not synchronise
// with the host; host-side values it reads are baked into the graph, so
// anything that changes between replays must live in device tensors.
// replay() launches the graph on the current stream and returns at once.
class CapturedCall {
 public:
  CapturedCall(const std::function<void()>& fn, const std::function<void()>& warm);
  ~CapturedCall();
  CapturedCall(const CapturedCall&) = delete;
  CapturedCall& operator=(const CapturedCall&) = delete;
  void replay() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashnas
