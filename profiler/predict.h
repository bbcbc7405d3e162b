// Workload latency predicted from a LUT (see DESIGN.md, "Latency model"):
//   prefill(B, P) + sum over decode contexts t = P .. P+G-1 of decode(B, t),
// summed over the sublayers plus the model's ends (embedding, final norm, LM
// head). Meta tokens shift every length and context by M. Contexts between
// grid points are interpolated linearly (and reported); a context outside the
// grid, or an operator with no entries, is an error naming the entry.
#pragma once
#include <string>
#include <vector>

#include "profiler/lut.h"
#include "profiler/workload.h"
#include "supernet/arch_spec.h"

namespace flashnas {

struct Prediction {
  double total_ms = 0, prefill_ms = 0, decode_ms = 0;  // calibrated when a calibration exists
  double raw_prefill_ms = 0, raw_decode_ms = 0;        // plain sums of the entries
  json calibration;                                    // the scales applied, or null
  std::vector<double> layer_ms;          // per sublayer, prefill + decode
  double ends_ms = 0;                    // embedding + final norm + head
  std::vector<std::string> interpolated; // which entries were interpolated, and how many steps
  json to_json() const;
};

// Keys of the entries an ArchSpec needs.
LutKey sublayer_key(const LayerSpec& layer, int64_t d_model, Phase phase, int64_t batch, int64_t length,
                    const std::string& dtype, const std::string& runtime);
LutKey ends_key(const ArchSpec& spec, Phase phase, int64_t batch, int64_t length, const std::string& dtype,
                const std::string& runtime);

// With `calibrated`, the prefill and decode sums are scaled by the LUT's
// calibration for this batch size when it has one (see LutStore); the
// output says which scales were applied.
Prediction predict(const ArchSpec& spec, const Workload& w, const LutStore& lut, int64_t device,
                   const std::string& dtype, const std::string& runtime, bool calibrated = true);

}  // namespace flashnas
