// What one training run reports: its curve points and its result. Kept
// apart from the trainer (and LibTorch) so that the study store, which
// records results, does not depend on how they are produced.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/json_io.h"

namespace flashnas {

struct CurvePoint {
  int64_t step = 0;    // optimizer steps done
  int64_t tokens = 0;  // training tokens consumed
  double train_loss = std::numeric_limits<double>::quiet_NaN();  // mean over the steps since the last point
  double val_loss = std::numeric_limits<double>::quiet_NaN();    // NaN where not evaluated
  double lr = 0;
  double grad_norm = 0;
  double elapsed_s = 0;
};

struct TrainResult {
  double val_loss = 0, val_ppl = 0, val_bpb = 0;
  double unigram_bpb = 0;  // baseline: unigram entropy of the training split, bits per byte
  int64_t tokens = 0, steps = 0, params = 0;
  double tokens_per_s = 0, wall_s = 0;
  bool completed = false;  // false when stopped early by stop_at_step
  bool task = false;       // task data: losses and bits per byte are over completion tokens and bytes
  std::vector<CurvePoint> curve;
  json to_json() const;
  // Two lines: tokens, time, speed and parameters; the validation result.
  std::string summary_text() const;
};

}  // namespace flashnas
