#include "profiler/cuda_timing.h"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

namespace flashnas {
namespace {

TimingStats sample_events(const std::function<void()>& call, const TimingOptions& opts) {
  for (int i = 0; i < opts.warmup; ++i) call();
  const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream();
  at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
  std::vector<double> us;
  double total_s = 0;
  for (;;) {
    start.record(stream);
    call();
    stop.record(stream);
    stop.synchronize();
    const double ms = start.elapsed_time(stop);
    us.push_back(ms * 1e3);
    total_s += ms / 1e3;
    const int n = static_cast<int>(us.size());
    if (n >= opts.max_count) break;
    if (n >= opts.min_count && (total_s >= opts.min_seconds || total_s >= opts.max_seconds)) break;
  }
  return summarize(std::move(us));
}

}  // namespace

TimingStats measure_cuda_events(const std::function<void()>& fn, const TimingOptions& opts) {
  return sample_events(fn, opts);
}

TimingStats measure_cuda_graph(const std::function<void()>& fn, const TimingOptions& opts) {
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(side);
  // Allocations, library handles and lazy initialisation happen before capture.
  for (int i = 0; i < 3; ++i) fn();
  side.synchronize();
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  fn();
  graph.capture_end();
  return sample_events([&] { graph.replay(); }, opts);
}

struct CapturedCall::Impl {
  at::cuda::CUDAGraph graph;
};

CapturedCall::CapturedCall(const std::function<void()>& fn, const std::function<void()>& warm)
    : impl_(std::make_unique<Impl>()) {
  // Work queued on the caller's stream (e.g. what filled a state) must be
  // done before the side stream reads it.
  c10::cuda::getCurrentCUDAStream().synchronize();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  {
    c10::cuda::CUDAStreamGuard guard(side);
    warm();
    side.synchronize();
    impl_->graph.capture_begin();
    try {
      fn();
    } catch (...) {
      // Leave capture mode before the error travels on, or the stream stays
      // unusable for whoever catches it.
      try {
        impl_->graph.capture_end();
      } catch (...) {
      }
      throw;
    }
    impl_->graph.capture_end();
  }
  side.synchronize();
}

CapturedCall::~CapturedCall() = default;

void CapturedCall::replay() const { impl_->graph.replay(); }

}  // namespace flashnas
