// Workload latency predicted from a LUT (docs/latency.md, "latency model"):
//   prefill(B, P) + sum over decode contexts t = P .. P+G-1 of decode(B, t),
// summed over the sublayers plus the model's ends (embedding, final norm, LM
// head). Meta tokens shift every length and context by M. Contexts between
// grid points are interpolated linearly (and reported); a context outside the
// grid, or an operator with no entries, is an error naming the entry.
#pragma once
#include <string>
#include <vector>

#include "profiler/latency_model.h"
#include "profiler/lut.h"
#include "profiler/lut_table.h"
#include "profiler/workload.h"
#include "supernet/arch_spec.h"

namespace flashnas {

struct Prediction {
  double total_ms = 0;                           // through the table's latency model when it has one
  double raw_prefill_ms = 0, raw_decode_ms = 0;  // plain sums of the entries
  json model;                                    // the latency model applied (kind and numbers), or null
  FitRow row;                                    // the entry sums per (operator, d_model, phase) group
  std::vector<double> layer_ms;          // per sublayer, prefill + decode, raw sums
  double ends_ms = 0;                    // embedding + final norm + head, raw sums
  std::vector<std::string> interpolated; // which entries were interpolated, and how many steps
  json to_json() const;
};

// Keys of the entries an ArchSpec needs.
LutKey sublayer_key(const LayerSpec& layer, int64_t d_model, Phase phase, int64_t batch, int64_t length,
                    const std::string& dtype, const std::string& runtime);
LutKey ends_key(const ArchSpec& spec, Phase phase, int64_t batch, int64_t length, const std::string& dtype,
                const std::string& runtime);

// With `use_model`, the entry sums go through the table's latency model for
// this batch size when it has one (see latency_model.h); the output says
// which model was applied. Without, total_ms is the plain sum.
Prediction predict(const ArchSpec& spec, const Workload& w, const LutTable& table, bool use_model = true);
// The same, loading the table of (device, dtype, runtime) first (one-off predictions).
Prediction predict(const ArchSpec& spec, const Workload& w, const LutStore& lut, int64_t device,
                   const std::string& dtype, const std::string& runtime, bool use_model = true);

}  // namespace flashnas
